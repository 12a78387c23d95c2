// Reading artifacts: following link artifacts (checking `queue:get-artifact:<name>` for
// every name on the way, refusing cycles), then answering as the real queue does — a 303
// to the data for s3, object and reference artifacts, 424 with reason and message for
// error artifacts — or, for artifact-content, the information needed to fetch the data.
import taskcluster from 'taskcluster-client';
import type { EmbeddedContext } from '../context.ts';
import type { ApiRequest } from '../api/service.ts';
import { Reply } from '../api/service.ts';
import { ApiError, inputError, notFound } from '../api/errors.ts';
import type { ObjectStore } from '../object/object-store.ts';
import { signBlobUrl } from '../object/signed-url.ts';
import type { RunLookup } from './run-lookup.ts';
import { blobKeyOfArtifact, objectNameOfArtifact, type Artifact, type ArtifactStore } from './artifact-store.ts';

/** How long signed download URLs are valid (the real queue: 30 minutes). */
const DOWNLOAD_URL_SECONDS = 30 * 60;
const CLIENT_ID_PATTERN = /^[A-Za-z0-9!@/:.+|_-]+$/;

export function parseRunId(value: string): number {
  if (!/^\d{1,4}$/.test(value)) throw inputError(`runId ${JSON.stringify(value)} must be a non-negative integer`);
  return Number(value);
}

/** The runId of the task's latest run, or 404. */
export function latestRunId(runs: RunLookup, taskId: string): number {
  const task = runs.task(taskId);
  if (!task) throw notFound(`Task ${taskId}`);
  if (task.status.runs.length === 0) throw notFound(`Runs of task ${taskId}`);
  return task.status.runs.length - 1;
}

/** The artifact `name` of a run, following links; authorizes each name it passes. */
export function artifactFollowingLinks(req: ApiRequest, artifacts: ArtifactStore, taskId: string, runId: number, name: string): Artifact {
  const names: string[] = [];
  for (let current = name; ;) {
    names.push(current);
    req.authorize({ names });
    const artifact = artifacts.get(taskId, runId, current);
    if (!artifact || !artifact.present) throw notFound(`Artifact ${current} of run ${runId} of task ${taskId}`);
    if (artifact.expires < Date.now()) throw new ApiError('ResourceExpired', `Artifact ${current} has expired`);
    if (artifact.storageType !== 'link') return artifact;
    const target = artifact.details.artifact;
    if (names.includes(target)) throw inputError(`Artifact ${name} leads to a link cycle (${[...names, target].join(' -> ')})`);
    current = target;
  }
}

export function artifactDownloadReply(ctx: EmbeddedContext, objects: ObjectStore, rootUrl: string, artifact: Artifact): Reply {
  const { storageType } = artifact;
  const redirect = (url: string) =>
    new Reply(303, { storageType, url }, { location: url, 'x-taskcluster-artifact-storage-type': storageType });
  switch (storageType) {
    case 's3':
      return redirect(signBlobUrl(ctx.settings.blobUrlBase ?? rootUrl, ctx.urlSecret, {
        method: 'GET', key: blobKeyOfArtifact(artifact.taskId, artifact.runId, artifact.name), expires: Date.now() + DOWNLOAD_URL_SECONDS * 1000,
      }));
    case 'object': {
      const objectName = objectNameOfArtifact(artifact.taskId, artifact.runId, artifact.name);
      objects.readable(objectName);
      return redirect(objects.downloadUrl(objectName, DOWNLOAD_URL_SECONDS).url);
    }
    case 'reference':
      return redirect(artifact.details.url);
    case 'error':
      return new Reply(424, { reason: artifact.details.reason, message: artifact.details.message },
        { 'x-taskcluster-artifact-storage-type': storageType });
    default:
      throw new Error(`unexpected artifact storageType ${storageType}`);
  }
}

export function artifactContent(ctx: EmbeddedContext, rootUrl: string, artifact: Artifact): Record<string, unknown> {
  const { storageType, taskId, runId } = artifact;
  switch (storageType) {
    case 's3':
      return {
        storageType,
        url: signBlobUrl(ctx.settings.blobUrlBase ?? rootUrl, ctx.urlSecret, {
          method: 'GET', key: blobKeyOfArtifact(taskId, runId, artifact.name), expires: Date.now() + DOWNLOAD_URL_SECONDS * 1000,
        }),
      };
    case 'object': {
      const name = objectNameOfArtifact(taskId, runId, artifact.name);
      const clientId = `artifact-download/${taskId}/${runId}/${artifact.name}`;
      const credentials = taskcluster.createTemporaryCredentials({
        clientId: CLIENT_ID_PATTERN.test(clientId) ? clientId : `artifact-download/${taskId}/${runId}`,
        start: new Date(),
        expiry: taskcluster.fromNow('1 hour'),
        scopes: [`object:download:${name}`],
        credentials: ctx.serviceCredentials,
      });
      return { storageType, name, credentials };
    }
    case 'reference':
      return { storageType, url: artifact.details.url };
    case 'error':
      return { storageType, reason: artifact.details.reason, message: artifact.details.message };
    default:
      throw new Error(`unexpected artifact storageType ${storageType}`);
  }
}
