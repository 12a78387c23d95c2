// Stage 5: artifacts out of the stopped container. Each planned artifact is read with the
// engine's archive API (a tar stream), split into files on a temp dir one at a time, and
// uploaded. A missing path or a path of the wrong type becomes an `error` artifact and a log
// line; the task's result is unchanged. An upload that still fails after its retries is an
// infrastructure problem: it is returned so the run resolves exception/internal-error.
// A `volume` artifact (payload v1) is what docker-worker made of it: a directory, uploaded
// file by file. When `signal` aborts (the run was cancelled or its claim lost) no further
// artifact is started.
import { EngineError } from '../docker/engine-error.ts';
import type { Engine } from '../docker/engine.ts';
import path from 'node:path';
import { extractArtifactEntries, archivedFile, ArtifactTypeError } from '../artifacts/extract.ts';
import type { ArtifactPublisher, UploadResult } from '../artifacts/upload.ts';
import type { TaskLog } from '../log/task-log.ts';
import type { PlannedArtifact } from './types.ts';

export interface CollectResult {
  uploaded: UploadResult[];
  /** The first upload that failed for good, if any. */
  uploadFailure?: Error;
  /** `signal` aborted before every artifact was collected. */
  stopped?: boolean;
}

export async function collectArtifacts(
  engine: Engine, containerId: string, artifacts: PlannedArtifact[], publisher: ArtifactPublisher, taskLog: TaskLog,
  signal?: AbortSignal,
): Promise<CollectResult> {
  const uploaded: UploadResult[] = [];
  for (const artifact of artifacts) {
    if (signal?.aborted) return { uploaded, stopped: true };
    const type = artifact.type === 'volume' ? 'directory' : artifact.type;
    try {
      const tar = await engine.getArchive(containerId, artifact.path);
      for await (const item of extractArtifactEntries(tar, { name: artifact.name, type })) {
        if (item.kind === 'skipped') {
          taskLog.warn(`Artifact "${item.name}" was not uploaded: ${item.reason}.`);
          continue;
        }
        // A retry reads the file again from the container (it stays until cleanup).
        const filePath = path.posix.join(artifact.path, ...item.relative);
        const open = async (attempt: number) => attempt === 1 ? item.stream : archivedFile(await engine.getArchive(containerId, filePath), item.name);
        uploaded.push(await publisher.uploadStream(open, item.size, { name: item.name, expires: artifact.expires }));
      }
    } catch (err) {
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
        return { uploaded, uploadFailure: new Error(message, { cause: err }) };
      }
    }
  }
  return { uploaded };
}

async function errorArtifact(publisher: ArtifactPublisher, artifact: PlannedArtifact, reason: 'file-missing-on-worker' | 'invalid-resource-on-worker', message: string, taskLog: TaskLog): Promise<void> {
  try {
    await publisher.createErrorArtifact(artifact.name, reason, message, artifact.expires);
  } catch (err) {
    taskLog.warn(`Could not record the error artifact "${artifact.name}": ${(err as Error).message}`);
  }
}
