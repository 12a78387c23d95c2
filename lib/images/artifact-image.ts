// Finds an image artifact and opens its data, through taskcluster-client over HTTP:
//   indexed-image  index.findTask(namespace) -> taskId
//   task-image     queue.status(taskId) -> latest runId
//   both           queue.artifact(taskId, runId, path) (artifact-content) ->
//                    s3 / reference: a URL;
//                    object: object.startDownload (getUrl) -> URL and the object's sha256;
//                    error: the artifact's own reason and message.
// Reads anonymous callers may make (status, findTask, artifacts under public/) go without
// credentials first, then with the claim's; private artifacts use the claim's credentials,
// which change after each reclaim (hence a function). A task may use an artifact outside
// public/ only with queue:get-artifact:<path> in its scopes — directly or through a role (the
// run's ScopeSet expands them once): checked here before any request.
import { Readable } from 'node:stream';
import taskcluster from 'taskcluster-client';
import type { Credentials } from '../queue/taskcluster.ts';
import type { ScopeRequirement } from '../scopes/scope-requirement.ts';
import type { ScopeSet } from '../scopes/task-scopes.ts';
import type { ImageRef } from './image-ref.ts';
import { statusCodeOf } from '../retry/with-retries.ts';
import { ImageFailure, failureFromHttp, firstLine } from './errors.ts';
import type { ArtifactIdentity } from './local-name.ts';

export type ArtifactImageRef = Exclude<ImageRef, { kind: 'registry' }>;

export interface ArtifactAccess {
  rootUrl: string;
  /** The task's scopes (roles looked through when the raw ones fall short). */
  scopes: ScopeSet;
  credentials: () => Credentials;
  /** Retries of each API call on network errors and 5xx (taskcluster-client's own). */
  apiRetries?: number;
}

export interface ResolvedArtifact extends ArtifactIdentity {
  /** The index namespace it was found through, for messages. */
  namespace?: string;
  storageType: 's3' | 'object' | 'reference';
  url: string;
  /** The object service's sha256 of the data (hex), when the artifact is an object. */
  sha256?: string;
  /** The run is resolved: its artifacts no longer change. */
  runResolved: boolean;
}

export interface OpenedDownload {
  body: Readable;
  /** Bytes to expect, when the data is not content-encoded on the wire. */
  length?: number;
  contentEncoding?: string;
}

export function isPublicPath(path: string): boolean {
  return /^\/?public\//.test(path);
}

/** "task-image public/image.tar of task X" / "indexed-image ... (found at ns: task X)" */
export function describeArtifact(a: { taskId: string; path: string; namespace?: string }): string {
  return a.namespace ? `${a.path} of task ${a.taskId} (indexed at ${a.namespace})` : `${a.path} of task ${a.taskId}`;
}

/** Image tarballs outside `public/` are private artifacts: the task must be allowed to read them. */
export function imageArtifactRequirement(image: ImageRef): ScopeRequirement | undefined {
  if (image.kind === 'registry' || isPublicPath(image.path)) return undefined;
  return { field: 'payload.image.path', anyOf: [`queue:get-artifact:${image.path}`] };
}

/**
 * The scope check for artifacts outside public/ (the task's scopes, then, when those fall
 * short, the scopes its roles grant); throws the message the task owner sees.
 */
export async function checkArtifactScope(ref: ArtifactImageRef, access: Pick<ArtifactAccess, 'scopes'>): Promise<void> {
  const requirement = imageArtifactRequirement(ref);
  if (!requirement) return;
  let allowed: boolean;
  try {
    allowed = await access.scopes.allows(requirement.anyOf);
  } catch (err) {
    throw new ImageFailure('transient', `Could not expand the task's scopes to check access to the image artifact ${ref.path}: ${firstLine(err)}`, err);
  }
  if (allowed) return;
  const where = ref.kind === 'task-image' ? `of task ${ref.taskId}` : `indexed at ${ref.namespace}`;
  throw new ImageFailure('unauthorized',
    `Not authorized to use the image artifact ${ref.path} ${where}: artifacts outside public/ need the scope ${requirement.anyOf[0]} in task.scopes (directly or through a role); add it to the task.`);
}

type Client = Record<string, (...args: unknown[]) => Promise<any>>;

class Clients {
  private readonly access: ArtifactAccess;
  constructor(access: ArtifactAccess) { this.access = access; }
  private options(withCredentials: boolean): Record<string, unknown> {
    return {
      rootUrl: this.access.rootUrl,
      ...(withCredentials ? { credentials: this.access.credentials() } : {}),
      ...(this.access.apiRetries !== undefined ? { retries: this.access.apiRetries } : {}),
    };
  }
  queue(withCredentials: boolean): Client { return new taskcluster.Queue(this.options(withCredentials)); }
  index(withCredentials: boolean): Client { return new taskcluster.Index(this.options(withCredentials)); }
  object(credentials: Credentials): Client {
    return new taskcluster.Object({ ...this.options(false), credentials });
  }
}

/** Anonymous first; with the claim's credentials when anonymous may not. */
async function anonymousFirst<T>(call: (withCredentials: boolean) => Promise<T>): Promise<T> {
  try {
    return await call(false);
  } catch (err) {
    const status = statusCodeOf(err);
    if (status !== 401 && status !== 403) throw err;
    return call(true);
  }
}

export async function resolveArtifact(ref: ArtifactImageRef, access: ArtifactAccess): Promise<ResolvedArtifact> {
  await checkArtifactScope(ref, access);
  const clients = new Clients(access);
  let taskId: string;
  let namespace: string | undefined;
  if (ref.kind === 'indexed-image') {
    namespace = ref.namespace;
    try {
      taskId = (await anonymousFirst((c) => clients.index(c).findTask!(ref.namespace)) as { taskId: string }).taskId;
    } catch (err) {
      throw failureFromHttp(err, {
        notFound: `No task is indexed at ${ref.namespace} (payload.image.namespace); check the namespace, and that the indexed task has not expired.`,
        unauthorized: `Not authorized to look up ${ref.namespace} in the index: ${firstLine(err)}`,
        other: `Could not look up ${ref.namespace} in the index: ${firstLine(err)}`,
      });
    }
  } else {
    taskId = ref.taskId;
  }
  const path = ref.path;
  const what = describeArtifact({ taskId, path, namespace });

  let runId: number;
  let runResolved: boolean;
  try {
    const { status } = await anonymousFirst((c) => clients.queue(c).status!(taskId)) as { status: { runs: { runId: number; state: string }[] } };
    const run = status.runs[status.runs.length - 1];
    if (!run) throw new ImageFailure('not-found', `Task ${taskId} has not run yet, so it has no image artifact ${path}.`);
    runId = run.runId;
    runResolved = !['pending', 'running'].includes(run.state);
  } catch (err) {
    if (err instanceof ImageFailure) throw err;
    throw failureFromHttp(err, {
      notFound: `Task ${taskId} does not exist, so its artifact ${path} cannot be used as the image.`,
      unauthorized: `Not authorized to read the status of task ${taskId}: ${firstLine(err)}`,
      other: `Could not read the status of task ${taskId}: ${firstLine(err)}`,
    });
  }

  let content: { storageType: string; url?: string; name?: string; credentials?: Credentials; reason?: string; message?: string };
  try {
    const get = (c: boolean) => clients.queue(c).artifact!(taskId, runId, path);
    content = await (isPublicPath(path) ? anonymousFirst(get) : get(true));
  } catch (err) {
    throw failureFromHttp(err, {
      notFound: `Task ${taskId} has no artifact ${path} in its latest run (run ${runId}); check payload.image.path.`,
      unauthorized: `Not authorized to use the image artifact ${what}: ${firstLine(err)}`,
      other: `Could not read the image artifact ${what}: ${firstLine(err)}`,
    });
  }
  const base = { taskId, runId, path, namespace, runResolved };
  switch (content.storageType) {
    case 's3':
    case 'reference':
      return { ...base, storageType: content.storageType, url: content.url! };
    case 'object': {
      try {
        const download = await clients.object(content.credentials!).startDownload!(content.name!, { acceptDownloadMethods: { getUrl: true } }) as
          { method: string; url: string; hashes?: Record<string, string> };
        return { ...base, storageType: 'object', url: download.url, sha256: download.hashes?.sha256 };
      } catch (err) {
        throw failureFromHttp(err, {
          notFound: `The data of the image artifact ${what} is missing from the object service.`,
          unauthorized: `Not authorized to download the image artifact ${what}: ${firstLine(err)}`,
          other: `Could not start downloading the image artifact ${what}: ${firstLine(err)}`,
        });
      }
    }
    case 'error':
      throw new ImageFailure('not-found', `The image artifact ${what} is an error artifact (${content.reason}): ${content.message}`);
    default:
      throw new ImageFailure('invalid', `The image artifact ${what} has storage type ${content.storageType}, which cannot be downloaded.`);
  }
}

/** Starts the download of the artifact's data; fails at once on 4xx, as transient on 5xx. */
export async function openArtifact(artifact: ResolvedArtifact, signal: AbortSignal): Promise<OpenedDownload> {
  const what = describeArtifact(artifact);
  let res: Response;
  try {
    res = await fetch(artifact.url, { signal, redirect: 'follow' });
  } catch (err) {
    signal.throwIfAborted();
    throw new ImageFailure('transient', `Could not download the image artifact ${what}: ${describeNetworkError(err)}`, err);
  }
  if (!res.ok || !res.body) {
    const text = await readStart(res, ERROR_BODY_LIMIT);
    const detail = `HTTP ${res.status}${text ? `: ${text.slice(0, 200).trim()}` : ''}`;
    throw failureFromHttp({ statusCode: res.status }, {
      notFound: `The data of the image artifact ${what} was not found in storage (${detail}).`,
      unauthorized: `Not authorized to download the image artifact ${what} (${detail}).`,
      other: `Could not download the image artifact ${what} (${detail}).`,
    });
  }
  const encoding = res.headers.get('content-encoding') ?? undefined;
  const lengthHeader = res.headers.get('content-length');
  const length = !encoding || encoding === 'identity' ? (lengthHeader ? Number(lengthHeader) : undefined) : undefined;
  return { body: Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), length, contentEncoding: encoding };
}

/** How much of an error answer's body is read for the message; the rest is dropped unread. */
export const ERROR_BODY_LIMIT = 4096;

/** The first `limit` bytes of a response body as text (never the whole of a large body). */
export async function readStart(res: Response, limit: number): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < limit) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.length;
    }
  } catch {
    // a body that breaks off: what arrived is enough for a message
  } finally {
    reader.cancel().catch(() => {});
  }
  return Buffer.concat(chunks).subarray(0, limit).toString('utf8');
}

/** fetch() hides the reason in `cause`: "fetch failed (connect ECONNREFUSED ...)". */
export function describeNetworkError(err: unknown): string {
  const e = err as Error & { cause?: Error & { code?: string } };
  const cause = e?.cause;
  if (cause) return `${e.message} (${cause.code ? `${cause.code} ` : ''}${cause.message})`;
  return e instanceof Error ? e.message : String(err);
}
