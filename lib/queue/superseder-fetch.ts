// Asks a task's superseder which tasks supersede it: GET <supersederUrl>?taskId=<taskId>,
// answered with {"supersedes": [taskId, ...]} (each task supersedes those before it).
// The URL is the task author's, so the request carries nothing of the worker's (no
// credentials, no cookies), follows at most a few redirects and only to http(s), gives up
// after 5 s and reads at most 64 KiB. Never throws: every failure is a reason, for the task log.

export const SUPERSEDER_TIMEOUT_MS = 5_000;
export const SUPERSEDER_MAX_BYTES = 64 * 1024;
export const SUPERSEDER_MAX_REDIRECTS = 5;
export const SUPERSEDER_MAX_TASKS = 100;

const TASK_ID = /^[A-Za-z0-9_-]{8}[Q-T][A-Za-z0-9_-][CGKOSWaeimquy26-][A-Za-z0-9_-]{10}[AQgw]$/;

export type SupersedesAnswer = { ok: true; taskIds: string[] } | { ok: false; reason: string };

function httpUrl(text: string, base?: URL): URL | undefined {
  try {
    const url = new URL(text, base);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url : undefined;
  } catch {
    return undefined;
  }
}

/** The list in an answer's body, or why it is not one. */
export function parseSupersedes(body: string): SupersedesAnswer {
  let data: unknown;
  try { data = JSON.parse(body); } catch { return { ok: false, reason: 'the answer is not JSON' }; }
  const list = (data as { supersedes?: unknown } | null)?.supersedes;
  if (!Array.isArray(list)) return { ok: false, reason: 'the answer has no "supersedes" list' };
  if (list.length > SUPERSEDER_MAX_TASKS) return { ok: false, reason: `the list names more than ${SUPERSEDER_MAX_TASKS} tasks` };
  const bad = list.find((t) => typeof t !== 'string' || !TASK_ID.test(t));
  if (bad !== undefined) return { ok: false, reason: `the list holds ${JSON.stringify(bad)}, which is not a taskId` };
  return { ok: true, taskIds: [...new Set(list as string[])] };
}

async function readCapped(res: Response, maxBytes: number): Promise<string | undefined> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) { await reader.cancel().catch(() => undefined); return undefined; }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export async function fetchSupersedes(
  supersederUrl: string, taskId: string,
  options: { timeoutMs?: number; maxBytes?: number; signal?: AbortSignal } = {},
): Promise<SupersedesAnswer> {
  let url = httpUrl(supersederUrl);
  if (!url) return { ok: false, reason: 'supersederUrl is not an http(s) URL' };
  url.searchParams.set('taskId', taskId);
  const timeoutMs = options.timeoutMs ?? SUPERSEDER_TIMEOUT_MS;
  const signal = AbortSignal.any([AbortSignal.timeout(timeoutMs), ...(options.signal ? [options.signal] : [])]);
  try {
    for (let hop = 0; ; hop += 1) {
      const res = await fetch(url, { redirect: 'manual', signal, headers: { accept: 'application/json' }, credentials: 'omit' });
      if (res.status >= 300 && res.status < 400 && res.headers.has('location')) {
        await res.body?.cancel().catch(() => undefined);
        const next = httpUrl(res.headers.get('location')!, url);
        if (!next) return { ok: false, reason: 'the superseder redirected to something other than an http(s) URL' };
        if (hop + 1 > SUPERSEDER_MAX_REDIRECTS) return { ok: false, reason: `more than ${SUPERSEDER_MAX_REDIRECTS} redirects` };
        url = next;
        continue;
      }
      if (res.status !== 200) {
        await res.body?.cancel().catch(() => undefined);
        return { ok: false, reason: `the superseder answered HTTP ${res.status}` };
      }
      const body = await readCapped(res, options.maxBytes ?? SUPERSEDER_MAX_BYTES);
      if (body === undefined) return { ok: false, reason: `the answer is larger than ${options.maxBytes ?? SUPERSEDER_MAX_BYTES} bytes` };
      return parseSupersedes(body);
    }
  } catch (err) {
    if (signal.aborted && !options.signal?.aborted) return { ok: false, reason: `no answer within ${timeoutMs / 1000} s` };
    const e = err as Error & { cause?: Error };
    return { ok: false, reason: `the superseder could not be reached (${e.cause?.message ?? e.message})` };
  }
}
