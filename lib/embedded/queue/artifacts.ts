// The queue's artifact endpoints: createArtifact, finishArtifact, getArtifact,
// getLatestArtifact, listArtifacts, listLatestArtifacts, artifactInfo, latestArtifactInfo,
// artifact and latestArtifact. Data lives in the object service's stores (s3 artifacts as
// blobs, object artifacts as objects), which also expire it from disk.
import type { EmbeddedContext } from '../context.ts';
import type { Handler } from '../api/service.ts';
import { notFound } from '../api/errors.ts';
import { transaction } from '../store.ts';
import { objectStoreFor } from '../object/object-store.ts';
import { pageRequest } from '../index/paging.ts';
import type { RunLookup } from './run-lookup.ts';
import { ArtifactStore, blobKeyOfArtifact, describeArtifact } from './artifact-store.ts';
import { createArtifact, finishArtifact } from './artifact-create.ts';
import {
  artifactContent, artifactDownloadReply, artifactFollowingLinks, latestRunId, parseRunId,
} from './artifact-read.ts';

export function artifactHandlers(ctx: EmbeddedContext, runs: RunLookup): Record<string, Handler> {
  const artifacts = new ArtifactStore(ctx.db);
  const objects = objectStoreFor(ctx);
  const deps = { ctx, runs, artifacts, objects };

  /** A run that exists, or 404. */
  const existingRun = (taskId: string, runId: number): number => {
    if (runId > latestRunId(runs, taskId)) throw notFound(`Run ${runId} of task ${taskId}`);
    return runId;
  };

  const info = (taskId: string, runId: number, name: string) => {
    const artifact = artifacts.get(taskId, runId, name);
    if (!artifact || !artifact.present) throw notFound(`Artifact ${name} of run ${runId} of task ${taskId}`);
    return describeArtifact(artifact);
  };

  return {
    createArtifact: createArtifact(deps),
    finishArtifact: finishArtifact(deps),

    getArtifact(req) {
      const { taskId, name } = req.params;
      const artifact = artifactFollowingLinks(req, artifacts, taskId, parseRunId(req.params.runId), name);
      return artifactDownloadReply(ctx, objects, req.rootUrl, artifact);
    },
    getLatestArtifact(req) {
      const { taskId, name } = req.params;
      req.authorize({ names: [name] });
      const artifact = artifactFollowingLinks(req, artifacts, taskId, latestRunId(runs, taskId), name);
      return artifactDownloadReply(ctx, objects, req.rootUrl, artifact);
    },

    listArtifacts(req) {
      const { taskId } = req.params;
      const runId = existingRun(taskId, parseRunId(req.params.runId));
      return artifacts.list(taskId, runId, pageRequest(req.query));
    },
    listLatestArtifacts(req) {
      const { taskId } = req.params;
      return artifacts.list(taskId, latestRunId(runs, taskId), pageRequest(req.query));
    },

    artifactInfo(req) {
      const { taskId, name } = req.params;
      return info(taskId, parseRunId(req.params.runId), name);
    },
    latestArtifactInfo(req) {
      const { taskId, name } = req.params;
      return info(taskId, latestRunId(runs, taskId), name);
    },

    artifact(req) {
      const { taskId, name } = req.params;
      const artifact = artifactFollowingLinks(req, artifacts, taskId, parseRunId(req.params.runId), name);
      return artifactContent(ctx, req.rootUrl, artifact);
    },
    latestArtifact(req) {
      const { taskId, name } = req.params;
      req.authorize({ names: [name] });
      const artifact = artifactFollowingLinks(req, artifacts, taskId, latestRunId(runs, taskId), name);
      return artifactContent(ctx, req.rootUrl, artifact);
    },
  };
}

/**
 * Deletes artifacts past their expiry (an artifact never outlives its task) with their
 * s3 data. Object data expires with its object in the object service's own sweep.
 * For the queue's sweep to call.
 */
const BATCH = 500;

export async function sweepExpiredArtifacts(ctx: EmbeddedContext, now = Date.now()): Promise<number> {
  const blobs = objectStoreFor(ctx).blobs;
  const artifacts = new ArtifactStore(ctx.db);
  let count = 0;
  const nextBatch = () => transaction(ctx.db, () => artifacts.deleteExpired(now, BATCH));
  for (let expired = nextBatch(); expired.length > 0; expired = nextBatch()) {
    // The artifacts' rows and their blobs' rows in one commit, then the blob files.
    await blobs.deleteMany(expired.filter((a) => a.storageType === 's3').map((a) => blobKeyOfArtifact(a.taskId, a.runId, a.name)));
    count += expired.length;
  }
  return count;
}
