// Publishes one task run's artifacts to the queue, the way docker-worker and generic-worker do:
//  - `object` (default): queue.createArtifact -> object service createUpload (putUrl) -> one
//    streamed PUT, hashed (sha256) on the way -> finishUpload with that hash -> queue
//    finishArtifact. The source is opened again for a retry (a file from the start, an artifact
//    from the container's archive), so nothing is copied to disk first. taskcluster-client's
//    upload() helper would also hash sha512 (450 MB/s here: a third of sha256's speed and the
//    cap on upload throughput); the object service asks for at least one of the two. The
//    object service stores objects as sent (identity encoding): object artifacts are never
//    gzipped, as with generic-worker's object artifacts.
//  - `s3`: queue.createArtifact -> PUT to putUrl with Content-Type/Content-Length, gzip-encoded
//    unless the file is already compressed (a gzip copy is written to a temp file first, so the
//    length is known and a retry can re-send it).
//  - `reference`, `link`, `error`: one createArtifact call.
// createArtifact never carries `contentLength`: the v106 request schema allows it, but the real
// queue's artifact-created message schema does not, so the queue fails finishArtifact with 500
// (and older queues refuse the request). The object service's putUrl carries the length instead.
// Credentials come from a function: the claim's temporary credentials change at each reclaim.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import os from 'node:os';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import taskcluster from 'taskcluster-client';
import type { Credentials, QueueClient } from '../queue/taskcluster.ts';
import { contentTypeFor, worthGzipping } from './content-type.ts';
import { digestFile } from './file-digest.ts';
import { BodyLengthError, putFile, putStream } from './http-put.ts';
import { withRetries, type RetryOptions } from '../retry/with-retries.ts';

/** Opens the artifact's bytes from the start; called again for each retry (attempt 2, 3, …). */
export type OpenSource = (attempt: number) => Promise<Readable> | Readable;

export type StorageType = 'object' | 's3';
export type ErrorArtifactReason = 'file-missing-on-worker' | 'invalid-resource-on-worker' | 'too-large-file-on-worker';

export interface ArtifactPublisherOptions {
  rootUrl: string;
  taskId: string;
  runId: number;
  /** The current credentials for this run (they change after each reclaim). */
  credentials: () => Credentials | Promise<Credentials>;
  /** How file artifacts are stored (default `object`). */
  storageType?: StorageType;
  /** Retries of storage PUTs and of queue/object calls on network errors and 5xx. */
  retry?: RetryOptions;
  /** Where gzip copies and spooled streams are written (default: the OS temp dir). */
  tmpDir?: string;
}

export interface UploadRequest {
  name: string;
  expires: Date | string;
  /** Default: from the name's extension. */
  contentType?: string;
  /** `s3` only: default gzip unless the name says the content is already compressed. */
  contentEncoding?: 'gzip' | 'identity';
}

export interface UploadResult {
  name: string;
  storageType: StorageType;
  contentType: string;
  contentEncoding: 'gzip' | 'identity';
  /** Bytes of the artifact itself. */
  size: number;
  /** sha256 of the artifact itself (before any gzip), hex: what chain of trust records. */
  sha256: string;
}

export class ArtifactPublisher {
  readonly taskId: string;
  readonly runId: number;
  #options: ArtifactPublisherOptions;
  readonly #uploaded: UploadResult[] = [];

  /** Every upload completed so far (file, data and stream), in order: what chain of trust lists. */
  get uploaded(): readonly UploadResult[] {
    return this.#uploaded;
  }

  constructor(options: ArtifactPublisherOptions) {
    this.#options = options;
    this.taskId = options.taskId;
    this.runId = options.runId;
  }

  get storageType(): StorageType {
    return this.#options.storageType ?? 'object';
  }

  /** Uploads a file from disk. */
  async uploadFile(filePath: string, request: UploadRequest): Promise<UploadResult> {
    return this.#record(await this.#uploadFile(filePath, request));
  }

  async #uploadFile(filePath: string, request: UploadRequest): Promise<UploadResult> {
    const contentType = request.contentType ?? contentTypeFor(request.name);
    const expires = isoTime(request.expires);
    if (this.storageType === 's3') return this.#uploadS3(filePath, request, contentType, expires);
    const { size } = await stat(filePath);
    const sha256 = await this.#uploadObject({ file: filePath }, size, request.name, contentType, expires);
    return { name: request.name, storageType: 'object', contentType, contentEncoding: 'identity', size, sha256 };
  }

  /** Uploads a string, a buffer or a stream (spooled to a temp file so retries can re-send it). */
  async uploadData(data: string | Buffer | Readable, request: UploadRequest): Promise<UploadResult> {
    const dir = await mkdtemp(path.join(this.#options.tmpDir ?? os.tmpdir(), 'artifact-'));
    try {
      const file = path.join(dir, 'data');
      try {
        if (typeof data === 'string' || Buffer.isBuffer(data)) await writeFile(file, data);
        else await pipeline(data, createWriteStream(file));
      } catch (err) {
        throw diskFull(err, this.#options.tmpDir ?? os.tmpdir());
      }
      return await this.uploadFile(file, request);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /**
   * Uploads a stream of known length (a file straight out of the container's archive) in one
   * pass. `open` gives the bytes from the start; it is called again for a retry. s3 storage
   * spools the first stream to a temp file (it gzips a copy anyway).
   */
  async uploadStream(open: OpenSource, size: number, request: UploadRequest): Promise<UploadResult> {
    if (this.storageType === 's3') return this.uploadData(await open(1), request);
    const contentType = request.contentType ?? contentTypeFor(request.name);
    const sha256 = await this.#uploadObject(open, size, request.name, contentType, isoTime(request.expires));
    return this.#record({ name: request.name, storageType: 'object', contentType, contentEncoding: 'identity', size, sha256 });
  }

  #record(result: UploadResult): UploadResult {
    this.#uploaded.push(result);
    return result;
  }

  /** An artifact that answers 424 with this reason and message, e.g. for a missing file. */
  async createErrorArtifact(name: string, reason: ErrorArtifactReason, message: string, expires: Date | string): Promise<void> {
    await (await this.#queue()).createArtifact(this.taskId, this.runId, name, {
      storageType: 'error', expires: isoTime(expires), reason, message,
    });
  }

  /** An artifact that redirects (303) to a URL, e.g. the live log. */
  async createReferenceArtifact(name: string, url: string, expires: Date | string, contentType = 'text/plain; charset=utf-8'): Promise<void> {
    await (await this.#queue()).createArtifact(this.taskId, this.runId, name, {
      storageType: 'reference', expires: isoTime(expires), url, contentType,
    });
  }

  /** An artifact that reads as another artifact of the same run. */
  async createLinkArtifact(name: string, target: string, expires: Date | string, contentType = 'text/plain; charset=utf-8'): Promise<void> {
    await (await this.#queue()).createArtifact(this.taskId, this.runId, name, {
      storageType: 'link', expires: isoTime(expires), artifact: target, contentType,
    });
  }

  /** The object upload protocol; returns the sha256 of the bytes sent. */
  /** A file is sent from disk (putFile, buffers reused); a stream source is opened per attempt. */
  async #uploadObject(source: OpenSource | { file: string }, size: number, name: string, contentType: string, expires: string): Promise<string> {
    const open: OpenSource = typeof source === 'function' ? source : () => createReadStream(source.file);
    const created = await (await this.#queue()).createArtifact(this.taskId, this.runId, name, {
      storageType: 'object', expires, contentType,
    }) as { name: string; projectId: string; uploadId: string; expires: string; credentials: Credentials };
    const object = new taskcluster.Object({ rootUrl: this.#options.rootUrl, credentials: created.credentials, ...this.#clientRetry() });
    const { projectId, uploadId } = created;
    let body: OpenSource | undefined = typeof source === 'function' ? source : undefined;
    if (size < DATA_INLINE_MAX) {
      // Small (a trivial task's log): the data rides in createUpload itself, one call less.
      const data = await readSmall(await open(1), size);
      const sha256 = createHash('sha256').update(data).digest('hex');
      const offer = await object.createUpload(created.name, {
        projectId, uploadId, expires: created.expires,
        proposedUploadMethods: { dataInline: { contentType, objectData: data.toString('base64') } },
      }) as { uploadMethod: { dataInline?: boolean } };
      if (offer.uploadMethod.dataInline) {
        await object.finishUpload(created.name, { projectId, uploadId, hashes: { sha256 } });
        await (await this.#queue()).finishArtifact(this.taskId, this.runId, name, { uploadId });
        return sha256;
      }
      body = () => Readable.from([data]); // the service wants a PUT after all: the bytes are here
    }
    const sha256 = await withRetries(async (attempt) => {
      // Asked for on every attempt: a fresh URL (they expire), same upload.
      const offer = await object.createUpload(created.name, {
        projectId, uploadId, expires: created.expires,
        proposedUploadMethods: { putUrl: { contentType, contentLength: size } },
      }) as { uploadMethod: { putUrl?: { url: string; headers: Record<string, string> } } };
      const put = offer.uploadMethod.putUrl;
      if (!put) throw Object.assign(new Error(`the object service did not accept a putUrl upload of ${name}`), { retriable: false });
      const hash = createHash('sha256');
      const options = { headers: put.headers, length: size, onData: (chunk: Buffer) => hash.update(chunk) };
      if (body) await putStream(put.url, await body(attempt), options);
      else await putFile(put.url, (source as { file: string }).file, options);
      return hash.digest('hex');
    }, this.#options.retry);
    await object.finishUpload(created.name, { projectId, uploadId, hashes: { sha256 } });
    await (await this.#queue()).finishArtifact(this.taskId, this.runId, name, { uploadId });
    return sha256;
  }

  async #uploadS3(filePath: string, request: UploadRequest, contentType: string, expires: string): Promise<UploadResult> {
    const encoding = request.contentEncoding ?? (worthGzipping(request.name) ? 'gzip' : 'identity');
    const dir = encoding === 'gzip' ? await mkdtemp(path.join(this.#options.tmpDir ?? os.tmpdir(), 'artifact-gz-')) : undefined;
    try {
      const gzipFile = dir ? path.join(dir, 'body.gz') : undefined;
      const digest = await digestFile(filePath, gzipFile).catch((err: unknown) => { throw diskFull(err, this.#options.tmpDir ?? os.tmpdir()); });
      const body = gzipFile ?? filePath;
      const length = digest.gzipSize ?? digest.size;
      const queue = await this.#queue();
      const created = await queue.createArtifact(this.taskId, this.runId, request.name, {
        storageType: 's3', expires, contentType,
      }) as { putUrl: string };
      const headers: Record<string, string | number> = { 'Content-Type': contentType, 'Content-Length': length };
      if (encoding === 'gzip') headers['Content-Encoding'] = 'gzip';
      await withRetries(() => putFile(created.putUrl, body, { headers }), this.#options.retry);
      return { name: request.name, storageType: 's3', contentType, contentEncoding: encoding, size: digest.size, sha256: digest.sha256 };
    } finally {
      if (dir) await rm(dir, { recursive: true, force: true });
    }
  }

  async #queue(): Promise<QueueClient> {
    const credentials = await this.#options.credentials();
    return new taskcluster.Queue({ rootUrl: this.#options.rootUrl, credentials, ...this.#clientRetry() }) as QueueClient;
  }

  #clientRetry(): Record<string, number> {
    const retry = this.#options.retry;
    if (!retry) return {};
    return {
      ...(retry.retries !== undefined ? { retries: retry.retries } : {}),
      ...(retry.baseDelayMs !== undefined ? { delayFactor: retry.baseDelayMs / 2 } : {}),
      ...(retry.maxDelayMs !== undefined ? { maxDelay: retry.maxDelayMs } : {}),
    };
  }
}

/** A plain sentence for a copy that found the disk full (ENOSPC); any other error as it is. */
function diskFull(err: unknown, dir: string): unknown {
  if ((err as NodeJS.ErrnoException | undefined)?.code !== 'ENOSPC') return err;
  return new Error(`the worker's disk is full: no room left in ${dir} for the copy the upload is sent from (${(err as Error).message})`, { cause: err });
}

/** Below this many bytes an object is uploaded inline (the object service takes up to 8 KiB). */
const DATA_INLINE_MAX = 8192;

/** All of a small stream, which must be exactly `size` bytes. */
async function readSmall(source: Readable, size: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of source as AsyncIterable<Buffer>) {
    length += chunk.length;
    if (length > size) { source.destroy(); break; }
    chunks.push(chunk);
  }
  if (length !== size) throw new BodyLengthError(size, length);
  return Buffer.concat(chunks, length);
}

function isoTime(value: Date | string): string {
  const d = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(d.getTime())) throw new Error(`artifact expiry is not a valid time: ${String(value)}`);
  return d.toISOString();
}
