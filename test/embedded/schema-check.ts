// Checks every API request the tests send to an embedded deployment, and every answer, against
// the official Taskcluster references and schemas, independently of the deployment's own
// validator (lib/embedded/api/references.ts): its own Ajv, its own route matching, over what
// actually crossed the wire (recorded on the deployment's HTTP server).
//
// The rules, per request to <rootUrl>/api/<service>/v1/<route>:
// - a route no reference entry declares must be answered 404;
// - a body the entry's input schema refuses must be refused (400, or 401/403/413), a body it
//   requires must be there, and a query parameter the entry does not declare must not be
//   answered 2xx;
// - a 2xx (and getArtifact's 303) body must match the entry's output schema;
// - an error body (4xx/5xx, except the queue's 424 for error artifacts, {reason, message}) has
//   the shape {code, message, requestInfo}.
//
// The schemas come from schemas/taskcluster/references.json (a verbatim subset of the official
// file, shared/reference/taskcluster-references.json, so that a clean checkout has them; the
// test in schema-check.test.ts compares the two when the shared file is there).
// SCHEMA_CHECK_REPORT=1 prints, at each close, how many exchanges of which entries were checked.
import { readFileSync } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import AjvModule from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { ValidateFunction } from 'ajv';
import { startEmbedded, type EmbeddedDeployment, type EmbeddedOptions } from '../../lib/embedded/server.ts';

const Ajv = AjvModule as unknown as typeof import('ajv').default;
const addFormats = addFormatsModule as unknown as (ajv: unknown) => void;

export const referencesFile = new URL('../../schemas/taskcluster/references.json', import.meta.url);

interface Entry {
  method: string; route: string; name: string; query?: string[]; input?: string; output?: string;
}
interface Route { service: string; entry: Entry; regex: RegExp; literal: number }

interface Stored { filename: string; content: any }

function loadReferences(): { routes: Route[]; validator: (id: string) => ValidateFunction } {
  const stored: Stored[] = JSON.parse(readFileSync(referencesFile, 'utf8'));
  const ajv = new Ajv({ allErrors: true, strict: false, validateFormats: true });
  addFormats(ajv);
  ajv.addMetaSchema(JSON.parse(readFileSync(new URL(import.meta.resolve('ajv/dist/refs/json-schema-draft-06.json')), 'utf8')));
  const schemas = stored.filter((f) => f.filename.startsWith('schemas/'));
  // The Taskcluster metaschemas first (they refer to each other, so unchecked), and the other
  // schemas are checked against them as they are added.
  for (const f of schemas) if (f.filename.startsWith('schemas/common/')) ajv.addMetaSchema(f.content, undefined, false);
  for (const f of schemas) if (!f.filename.startsWith('schemas/common/')) ajv.addSchema(f.content);
  const routes: Route[] = [];
  for (const f of stored) {
    const m = /^references\/([a-z-]+)\/v1\/api\.json$/.exec(f.filename);
    if (!m) continue;
    for (const entry of f.content.entries as Entry[]) {
      // Lenient on purpose: any parameter may hold anything but an empty string; the services
      // are stricter (see bad-input.test.ts), and an ambiguous path picks the most literal route.
      const parts = entry.route.split(/(<[^<>]+>)/).filter(Boolean);
      const source = parts.map((p) => (p.startsWith('<') ? '(.*)' : p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('');
      routes.push({ service: m[1], entry, regex: new RegExp(`^${source}$`), literal: parts.filter((p) => !p.startsWith('<')).join('').length });
    }
  }
  routes.sort((a, b) => b.literal - a.literal);
  const compiled = new Map<string, ValidateFunction>();
  const validator = (id: string) => {
    let v = compiled.get(id);
    if (!v) {
      v = ajv.getSchema(id);
      if (!v) throw new Error(`schema ${id} is not in ${referencesFile.pathname}`);
      compiled.set(id, v);
    }
    return v;
  };
  return { routes, validator };
}

let references: ReturnType<typeof loadReferences> | undefined;
const refs = () => (references ??= loadReferences());

const schemaIdOf = (service: string, ref: string) => (ref.startsWith('/schemas/') ? ref : `/schemas/${service}/${ref.replace(/^\.\//, '')}`);

function errorsOf(service: string, ref: string, value: unknown): string[] {
  const v = refs().validator(schemaIdOf(service, ref));
  if (v(value)) return [];
  return (v.errors ?? []).map((e) => `${e.instancePath || '(root)'} ${e.message}${e.keyword === 'additionalProperties' ? ` (${(e.params as any).additionalProperty})` : ''}`);
}

/** The reference entry a request goes to, or undefined. */
export function entryFor(method: string, pathname: string): { service: string; entry: Entry } | undefined {
  const m = /^\/api\/([a-z-]+)\/v1(\/.*)$/.exec(pathname);
  if (!m) return undefined;
  const [, service, route] = m;
  const wanted = method === 'HEAD' ? 'GET' : method;
  const found = refs().routes.find((r) => r.service === service && r.entry.method.toUpperCase() === wanted && r.regex.test(route));
  return found && { service: found.service, entry: found.entry };
}

export interface Exchange {
  method: string;
  url: string;
  requestBody: Buffer;
  status: number;
  responseBody: Buffer;
}

const parse = (b: Buffer): { ok: true; value: unknown } | { ok: false } => {
  try { return { ok: true, value: JSON.parse(b.toString('utf8')) }; } catch { return { ok: false }; }
};

/** The routes that answer 424 {reason, message} for an error artifact. */
const ERROR_ARTIFACT_ENTRIES = new Set(['queue.getArtifact', 'queue.getLatestArtifact']);
/** How a service may refuse a body that breaks its input schema. */
const REFUSALS = new Set([400, 401, 403, 413]);

/** What is wrong with one request/answer pair, by the rules at the top of this file. */
export function problemsOf(x: Exchange): string[] {
  const url = new URL(x.url, 'http://embedded');
  const found = entryFor(x.method, url.pathname);
  const problems: string[] = [];
  const body = x.responseBody.length ? parse(x.responseBody) : { ok: true as const, value: undefined };
  if (x.status >= 400 && x.status !== 424) {
    const e = body.ok ? body.value as any : undefined;
    if (!e || typeof e.code !== 'string' || typeof e.message !== 'string' || !e.requestInfo || typeof e.requestInfo !== 'object') {
      problems.push(`error answer ${x.status} is not {code, message, requestInfo}: ${x.responseBody.toString('utf8').slice(0, 300)}`);
    }
  }
  if (!found) {
    if (x.status !== 404) problems.push(`no reference entry declares this route, yet it was answered ${x.status}`);
    return problems;
  }
  const { service, entry } = found;
  const where = `${service}.${entry.name}`;
  if (x.status === 424) {
    const e = body.ok ? body.value as any : undefined;
    if (!ERROR_ARTIFACT_ENTRIES.has(where)) problems.push(`${where} answered 424`);
    else if (!e || typeof e.reason !== 'string' || typeof e.message !== 'string') problems.push(`${where}: a 424 body is {reason, message}, not ${x.responseBody}`);
  }
  if (x.status < 300) {
    for (const k of url.searchParams.keys()) {
      if (k !== 'bewit' && !entry.query?.includes(k)) problems.push(`${where} accepted the undeclared query parameter ${k}`);
    }
  }
  if (entry.input && x.requestBody.length > 0) {
    const sent = parse(x.requestBody);
    const inputErrors = sent.ok ? errorsOf(service, entry.input, sent.value) : ['(not JSON)'];
    if (inputErrors.length && !REFUSALS.has(x.status)) {
      problems.push(`${where} answered ${x.status}, not a refusal, to a body its input schema ${entry.input} refuses: ${inputErrors.join('; ')}`);
    }
  } else if (entry.input && x.status < 300) {
    problems.push(`${where} answered ${x.status} without the body its input schema ${entry.input} requires`);
  }
  const checksOutput = x.method !== 'HEAD' && entry.output && entry.output !== 'blob' && (x.status < 300 || (x.status === 303 && /^get(Latest)?Artifact$/.test(entry.name)));
  if (checksOutput) {
    if (!body.ok) problems.push(`${where} answered ${x.status} with a body that is not JSON`);
    else {
      const outputErrors = errorsOf(service, entry.output!, body.value);
      if (outputErrors.length) problems.push(`${where} answer ${x.status} does not match ${entry.output}: ${outputErrors.join('; ')}`);
    }
  }
  return problems;
}

export interface SchemaCheck {
  /** How many API exchanges were checked. */
  readonly checked: number;
  /** Entries (service.name) seen, with how many exchanges each. */
  readonly seen: Map<string, number>;
  readonly problems: string[];
  /** Throws listing every problem found so far. */
  assertClean(): void;
  /** Stops recording. */
  stop(): void;
}

/** Records and checks every /api/ exchange on `server`. */
export function checkSchemas(server: Server): SchemaCheck {
  const problems: string[] = [];
  const seen = new Map<string, number>();
  let checked = 0;
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    if (!req.url?.startsWith('/api/')) return;
    const requestChunks: Buffer[] = [];
    const responseChunks: Buffer[] = [];
    // Listening to 'data' here shares the stream with the service's own reader, which attaches
    // in the same tick (data flows from the next one).
    req.on('data', (c: Buffer) => requestChunks.push(c));
    const write = res.write.bind(res) as (...args: any[]) => boolean;
    const end = res.end.bind(res) as (...args: any[]) => ServerResponse;
    const keep = (chunk: unknown) => { if (chunk && typeof chunk !== 'function') responseChunks.push(Buffer.from(chunk as string)); };
    res.write = ((chunk: unknown, ...rest: any[]) => { keep(chunk); return write(chunk, ...rest); }) as ServerResponse['write'];
    res.end = ((chunk?: unknown, ...rest: any[]) => { keep(chunk); return end(chunk, ...rest); }) as ServerResponse['end'];
    res.once('finish', () => {
      checked++;
      const method = req.method ?? 'GET';
      const found = entryFor(method, new URL(req.url!, 'http://embedded').pathname);
      const key = found ? `${found.service}.${found.entry.name}` : '(no route)';
      seen.set(key, (seen.get(key) ?? 0) + 1);
      try {
        for (const p of problemsOf({ method, url: req.url!, requestBody: Buffer.concat(requestChunks), status: res.statusCode, responseBody: Buffer.concat(responseChunks) })) {
          problems.push(`${method} ${req.url}: ${p}`);
        }
      } catch (err) {
        problems.push(`${method} ${req.url}: the check itself failed: ${(err as Error).message}`);
      }
    });
  };
  server.prependListener('request', onRequest);
  return {
    get checked() { return checked; },
    seen, problems,
    assertClean() {
      if (problems.length) throw new Error(`${problems.length} request(s) or answer(s) break the official schemas:\n${problems.join('\n')}`);
    },
    stop() { server.off('request', onRequest); },
  };
}

/** Errors of `value` against the official schema `id` (e.g. /schemas/queue/v1/task.json#). */
export function schemaErrors(id: string, value: unknown): string[] {
  const m = /^\/schemas\/([a-z-]+)\//.exec(id);
  return errorsOf(m?.[1] ?? '', id, value);
}

/** Asserts `value` matches the official schema `id`. */
export function assertMatchesSchema(id: string, value: unknown): void {
  const errors = schemaErrors(id, value);
  if (errors.length) throw new Error(`does not match ${id}: ${errors.join('; ')}\n${JSON.stringify(value, null, 2).slice(0, 2000)}`);
}

export interface CheckedDeployment extends EmbeddedDeployment {
  check: SchemaCheck;
}

/**
 * startEmbedded with every API exchange checked against the official schemas; close() fails
 * (after shutting down) when any request or answer broke them, or when a Pulse message the queue
 * built breaks its exchange schema (checked again here with this file's own validator).
 */
export async function startCheckedEmbedded(options: EmbeddedOptions): Promise<CheckedDeployment> {
  const deployment = await startEmbedded(options);
  const check = checkSchemas(deployment.server);
  return {
    ...deployment, check,
    async close() {
      await deployment.close();
      check.stop();
      if (process.env.SCHEMA_CHECK_REPORT) process.stderr.write(`schema check: ${check.checked} exchanges ${JSON.stringify(Object.fromEntries(check.seen))}\n`);
      check.assertClean();
      const rejected = deployment.rejectedMessages();
      if (rejected.length) throw new Error(`${rejected.length} queue message(s) break their exchange schemas: ${JSON.stringify(rejected).slice(0, 2000)}`);
      for (const { exchange, message } of deployment.published()) assertMatchesSchema(`/schemas/queue/v1/${exchange}-message.json#`, message);
    },
  };
}
