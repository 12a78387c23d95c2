// Stage 5: artifacts out of the stopped container, uploaded in parallel as docker-worker did,
// at most `parallelism` uploads (createArtifact … PUT … finishArtifact) at a time.
//  - A file artifact is one upload: the engine's archive of its path (a tar stream) streamed
//    into the PUT, sha256 on the way.
//  - A directory artifact is read as one archive of the directory; its entries arrive in order
//    and are fanned out: a small file (≤ SMALL_FILE_MAX) is read into memory and uploaded while
//    the archive moves on to the next entry; a bigger one is streamed into its PUT (the archive
//    waits). Memory is bounded: (parallelism + open directory archives) × SMALL_FILE_MAX at most.
//  - A retry re-reads the bytes: a small file from its buffer, any other file from the
//    container's archive of that file (the container stays until cleanup).
// A missing path or a path of the wrong type becomes an `error` artifact and a log line; the
// task's result is unchanged. Every artifact (and every file of a directory) gets its chance:
// an upload that still fails after its retries is logged and the others go on; the first such
// failure is returned (an infrastructure problem: the run resolves exception/internal-error).
// A `volume` artifact (payload v1) is what docker-worker made of it: a directory. When `signal`
// aborts (the run was cancelled or its claim lost) no further upload is started.
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import PQueue from 'p-queue';
import { EngineError } from '../docker/engine-error.ts';
import type { Engine } from '../docker/engine.ts';
import { extractArtifactEntries, archivedFile, archivedFileEntry, ArtifactTypeError, type ExtractedEntry } from '../artifacts/extract.ts';
import type { ArtifactPublisher, OpenSource, UploadResult } from '../artifacts/upload.ts';
import type { TaskLog } from '../log/task-log.ts';
import type { PlannedArtifact } from './types.ts';

export interface CollectResult {
  uploaded: UploadResult[];
  /** The first upload that failed for good, if any. */
  uploadFailure?: Error;
  /** `signal` aborted before every artifact was collected. */
  stopped?: boolean;
}

export interface CollectOptions {
  /** Uploads in flight at once (default DEFAULT_UPLOAD_PARALLELISM). */
  parallelism?: number;
  signal?: AbortSignal;
}

/** What `artifacts.uploadParallelism` defaults to: README "Performance" (many artifacts) says why, bench/artifact-parallel.ts measures it. */
export const DEFAULT_UPLOAD_PARALLELISM = 8;

/** Files of a directory artifact up to this size are buffered, so the archive moves on while they upload. */
export const SMALL_FILE_MAX = 1024 * 1024;

type Entry = Extract<ExtractedEntry, { kind: 'entry' }>;

export async function collectArtifacts(
  engine: Engine, containerId: string, artifacts: PlannedArtifact[], publisher: ArtifactPublisher, taskLog: TaskLog,
  options: CollectOptions = {},
): Promise<CollectResult> {
  const parallelism = Math.max(1, options.parallelism ?? DEFAULT_UPLOAD_PARALLELISM);
  const { signal } = options;
  const uploads = new PQueue({ concurrency: parallelism });
  const readers = new PQueue({ concurrency: parallelism });
  const uploaded: UploadResult[] = [];
  let uploadFailure: Error | undefined;
  let stopped = false;
  const halted = () => { if (signal?.aborted) stopped = true; return stopped; };

  /** One file's upload; a failure is logged and remembered, never thrown. */
  const publish = async (name: string, artifact: PlannedArtifact, open: OpenSource, size: number) => {
    if (halted()) return;
    try {
      uploaded.push(await publisher.uploadStream(open, size, { name, expires: artifact.expires }));
    } catch (err) {
      const message = `Uploading artifact "${name}" failed: ${(err as Error).message}`;
      taskLog.error(message);
      uploadFailure ??= new Error(message, { cause: err });
    }
  };

  /** The archive of a file inside the container, read again for a retry. */
  const reread = (filePath: string, name: string) => async () => archivedFile(await engine.getArchive(containerId, filePath), name);

  /** A file artifact: its archive is opened in the upload's slot, then streamed into the PUT. */
  const collectFile = (artifact: PlannedArtifact) => uploads.add(async () => {
    if (halted()) return;
    let first: Entry;
    try {
      first = await archivedFileEntry(await engine.getArchive(containerId, artifact.path), artifact.name);
    } catch (err) {
      return recordFailure(err, artifact);
    }
    const again = reread(artifact.path, artifact.name);
    await publish(artifact.name, artifact, (attempt) => attempt === 1 ? first.stream : again(), first.size);
  });

  const collectDirectory = async (artifact: PlannedArtifact) => {
    const tar = await engine.getArchive(containerId, artifact.path);
    const pending: Promise<void>[] = [];
    try {
      for await (const item of extractArtifactEntries(tar, { name: artifact.name, type: 'directory' })) {
        if (halted()) break;
        if (item.kind === 'skipped') {
          taskLog.warn(`Artifact "${item.name}" was not uploaded: ${item.reason}.`);
          continue;
        }
        const again = reread(path.posix.join(artifact.path, ...item.relative), item.name);
        if (item.size <= SMALL_FILE_MAX) {
          await uploads.onSizeLessThan(1); // one buffered file waits for a slot, no more
          const bytes = await readAll(item);
          pending.push(uploads.add(() => publish(item.name, artifact, () => Readable.from([bytes]), item.size)));
        } else {
          // The archive waits while this file streams into its PUT. A failed PUT destroys only
          // `body`: the archive reader skips the rest of the entry and the next files get their turn.
          const body = detachable(item.stream);
          await uploads.add(() => publish(item.name, artifact, (attempt) => attempt === 1 ? body : again(), item.size));
          body.destroy();
        }
      }
    } finally {
      await Promise.all(pending);
    }
  };

  const collectOne = async (artifact: PlannedArtifact) => {
    if (halted()) return;
    const type = artifact.type === 'volume' ? 'directory' : artifact.type;
    try {
      if (type === 'file') await collectFile(artifact);
      else await collectDirectory(artifact);
    } catch (err) {
      await recordFailure(err, artifact);
    }
  };

  /** What a failure outside a file's own upload makes of the artifact. */
  const recordFailure = async (err: unknown, artifact: PlannedArtifact) => {
    if (err instanceof EngineError && err.kind === 'not-found') {
      const message = `Artifact "${artifact.name}" not found at "${artifact.path}"`;
      taskLog.error(message);
      await errorArtifact(publisher, artifact, 'file-missing-on-worker', message, taskLog);
    } else if (err instanceof ArtifactTypeError) {
      taskLog.error(err.message);
      await errorArtifact(publisher, artifact, 'invalid-resource-on-worker', err.message, taskLog);
    } else {
      const message = `Uploading artifact "${artifact.name}" failed: ${(err as Error).message}`;
      taskLog.error(message);
      uploadFailure ??= new Error(message, { cause: err });
    }
  };

  await Promise.all(artifacts.map((artifact) => readers.add(() => collectOne(artifact))));
  await uploads.onIdle();
  return { uploaded, ...(uploadFailure ? { uploadFailure } : {}), ...(halted() ? { stopped: true } : {}) };
}

/**
 * The entry's bytes through a stream of their own: destroying it (a failed PUT) leaves the rest
 * of the entry to the archive reader instead of destroying the whole archive.
 */
function detachable(entry: Readable): PassThrough {
  const body = new PassThrough({ highWaterMark: 1024 * 1024 });
  const onData = (chunk: Buffer) => { if (!body.write(chunk)) entry.pause(); };
  const onDrain = () => entry.resume();
  const onEnd = () => body.end();
  const onError = (err: Error) => body.destroy(err);
  entry.on('data', onData);
  entry.once('end', onEnd);
  entry.once('error', onError);
  body.on('drain', onDrain);
  body.once('close', () => {
    entry.off('data', onData); entry.off('end', onEnd); entry.off('error', onError);
  });
  return body;
}

/** All of a small entry's bytes. */
async function readAll(entry: Entry): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of entry.stream as AsyncIterable<Buffer>) chunks.push(chunk);
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

async function errorArtifact(publisher: ArtifactPublisher, artifact: PlannedArtifact, reason: 'file-missing-on-worker' | 'invalid-resource-on-worker', message: string, taskLog: TaskLog): Promise<void> {
  try {
    await publisher.createErrorArtifact(artifact.name, reason, message, artifact.expires);
  } catch (err) {
    taskLog.warn(`Could not record the error artifact "${artifact.name}": ${(err as Error).message}`);
  }
}
