// createArtifact and finishArtifact, with the real queue's rules: only for a run that is
// running (or resolved `exception` less than 25 minutes ago), never expiring after the
// task, an identical repeat is accepted (extending `expires` is allowed, and a reference
// may change its url or become a link), anything else is 409.
import { isDeepStrictEqual } from 'node:util';
import slugid from 'slugid';
import taskcluster from 'taskcluster-client';
import type { EmbeddedContext } from '../context.ts';
import type { ApiRequest } from '../api/service.ts';
import { Reply } from '../api/service.ts';
import { conflict, inputError, notFound } from '../api/errors.ts';
import type { ObjectStore } from '../object/object-store.ts';
import { signBlobUrl } from '../object/signed-url.ts';
import type { RunLookup } from './run-lookup.ts';
import {
  blobKeyOfArtifact, describeArtifact, objectNameOfArtifact, type Artifact, type ArtifactStore, type StorageType,
} from './artifact-store.ts';
import { parseRunId } from './artifact-read.ts';
import { queuePulseFor } from './pulse.ts';

/** How long an s3 putUrl is valid (as the real queue: 45 minutes). */
const PUT_URL_MS = 45 * 60 * 1000;
/** Artifacts may still be added this long after a run resolved `exception`. */
const EXCEPTION_GRACE_MS = 25 * 60 * 1000;
const DAY_MS = 24 * 3600 * 1000;

interface CreateBody {
  storageType: StorageType;
  expires: string;
  contentType?: string;
  contentLength?: number;
  url?: string;
  artifact?: string;
  reason?: string;
  message?: string;
}

/** createArtifactCallsCompatible of the real queue. */
function compatible(original: Artifact, next: { storageType: StorageType; contentType: string; expires: number; details: Record<string, string> }): boolean {
  if (next.storageType !== 'link' && original.contentType !== next.contentType) return false;
  if (original.expires > next.expires) return false;
  if (original.storageType === next.storageType) {
    return next.storageType === 'reference' || isDeepStrictEqual(original.details, next.details);
  }
  return original.storageType === 'reference' && next.storageType === 'link';
}

export interface ArtifactDeps { ctx: EmbeddedContext; runs: RunLookup; artifacts: ArtifactStore; objects: ObjectStore }

/** The artifact-created message, once an artifact is present (never for s3, as the real queue). */
function announceArtifact(ctx: EmbeddedContext, runs: RunLookup, artifacts: ArtifactStore, taskId: string, runId: number, name: string): void {
  const task = runs.task(taskId);
  const artifact = artifacts.get(taskId, runId, name);
  if (!task || !artifact || !artifact.present || artifact.storageType === 's3') return;
  const run = task.status.runs[runId]!;
  queuePulseFor(ctx.db, ctx.rootUrl, ctx.log).publish('artifact-created', JSON.parse(JSON.stringify({
    status: task.status, artifact: describeArtifact(artifact), workerGroup: run.workerGroup, workerId: run.workerId, runId,
  })), task.definition.routes, 'must');
}

export function createArtifact({ ctx, runs, artifacts, objects }: ArtifactDeps) {
  return (req: ApiRequest): unknown => {
    const { taskId, name } = req.params;
    const runId = parseRunId(req.params.runId);
    const input = req.body as CreateBody;
    const { storageType } = input;
    const contentType = input.contentType || 'application/binary';
    const expires = Date.parse(input.expires);
    if (expires < Date.now() - 15 * 60 * 1000) throw inputError('Artifact expires must be in the future');

    const task = runs.task(taskId);
    if (!task) throw inputError(`Task ${taskId} not found`);
    const run = task.status.runs[runId];
    if (!run) throw inputError(`Task ${taskId} has no run ${runId}`);
    if (!run.workerGroup || !run.workerId) throw inputError('Run was not claimed by a worker and so no artifacts can exist');
    req.authorize({ taskId, runId, name });
    const taskExpires = Date.parse(task.status.expires);
    if (expires > taskExpires) {
      throw inputError(`Artifact expires (${new Date(expires).toISOString()}) after the task expiration ${task.status.expires}; artifacts may not expire after the task they belong to`,
        { taskExpires: task.status.expires, expires: new Date(expires).toISOString() });
    }
    if (run.state !== 'running') {
      const recentException = run.state === 'exception' && run.resolved !== undefined && Date.parse(run.resolved) > Date.now() - EXCEPTION_GRACE_MS;
      if (!recentException) {
        throw conflict(`Artifacts cannot be created for run ${runId} of task ${taskId}: it is ${run.state}. ` +
          'Artifacts can only be added while the run is running (or up to 25 minutes after it was resolved exception), ' +
          'so that they are all present before dependent tasks consume them.', { status: task.status });
      }
    }

    const existing = artifacts.get(taskId, runId, name);
    const details: Record<string, string> = {};
    if (storageType === 'object') {
      const unfinished = existing?.storageType === 'object' && !existing.present ? existing.details.uploadId : undefined;
      details.uploadId = unfinished ?? slugid.nice();
    } else if (storageType === 'reference') details.url = input.url!;
    else if (storageType === 'link') details.artifact = input.artifact!;
    else if (storageType === 'error') { details.reason = input.reason!; details.message = input.message!; }

    const objectName = objectNameOfArtifact(taskId, runId, name);
    if (existing) {
      if (!compatible(existing, { storageType, contentType, expires, details })) {
        throw conflict(`Artifact ${name} already exists with different properties (storageType ${existing.storageType}, ` +
          `contentType ${existing.contentType}, expires ${new Date(existing.expires).toISOString()})`,
        { originalArtifact: { storageType: existing.storageType, contentType: existing.contentType, expires: new Date(existing.expires).toISOString() } });
      }
      artifacts.update(taskId, runId, name, { storageType, details, expires });
      if (storageType === 's3') objects.blobs.setExpires(blobKeyOfArtifact(taskId, runId, name), expires);
      if (storageType === 'object') objects.extendUnfinished(objectName, new Date(expires));
    } else {
      if (storageType === 'object') {
        objects.beginUpload(objectName, { projectId: task.status.projectId, uploadId: details.uploadId, expires: new Date(expires) });
      }
      const inserted = artifacts.insert({
        taskId, runId, name, storageType, contentType, contentLength: input.contentLength, details,
        present: storageType !== 'object', expires,
      });
      if (!inserted) throw conflict(`Artifact ${name} was created concurrently; repeat the request`);
    }
    announceArtifact(ctx, runs, artifacts, taskId, runId, name);

    switch (storageType) {
      case 's3': {
        const urlExpires = Date.now() + PUT_URL_MS;
        const putUrl = signBlobUrl(ctx.settings.blobUrlBase ?? req.rootUrl, ctx.urlSecret, {
          method: 'PUT', key: blobKeyOfArtifact(taskId, runId, name), expires: urlExpires + 10_000, contentType, keep: expires,
        });
        return { storageType, contentType, expires: new Date(urlExpires).toISOString(), putUrl };
      }
      case 'object': {
        const credentials = taskcluster.createTemporaryCredentials({
          clientId: `artifact-upload/${taskId}/${runId}/on/${run.workerGroup}/${run.workerId}`,
          start: new Date(),
          expiry: new Date(Math.max(Math.min(expires, Date.now() + DAY_MS), Date.now() + 15 * 60 * 1000)),
          scopes: [`object:upload:${task.status.projectId}:${objectName}`],
          credentials: ctx.serviceCredentials,
        });
        return {
          storageType, name: objectName, projectId: task.status.projectId, uploadId: details.uploadId,
          expires: new Date(expires).toISOString(), credentials,
        };
      }
      default:
        return { storageType };
    }
  };
}

export function finishArtifact({ ctx, runs, artifacts, objects }: ArtifactDeps) {
  return (req: ApiRequest): unknown => {
    const { taskId, name } = req.params;
    const runId = parseRunId(req.params.runId);
    const { uploadId } = req.body as { uploadId: string };
    const artifact = artifacts.get(taskId, runId, name);
    if (!artifact || !runs.task(taskId)?.status.runs[runId]) {
      throw notFound(`Artifact with taskId ${taskId}, runId ${runId}, name ${name}`);
    }
    if (artifact.storageType !== 'object') throw inputError(`Only object artifacts can be finished; ${name} is a ${artifact.storageType} artifact`);
    if (artifact.present) { // repeated: announced again (at-least-once), as the real queue does
      announceArtifact(ctx, runs, artifacts, taskId, runId, name);
      return new Reply(204, undefined);
    }
    if (uploadId !== artifact.details.uploadId) throw inputError('The given uploadId does not match that of the artifact');
    const object = objects.get(objectNameOfArtifact(taskId, runId, name));
    if (!object || object.uploadId !== undefined) {
      throw inputError(`The object storing the data of artifact ${name} is not finished: upload it and call the object service's finishUpload first`);
    }
    artifacts.markPresent(taskId, runId, name);
    announceArtifact(ctx, runs, artifacts, taskId, runId, name);
    return new Reply(204, undefined);
  };
}
