// Test set-up for uploads: an embedded deployment, a claimed task run, an ArtifactPublisher
// with the claim's credentials, and a download helper that streams (never buffers big files).
import { mkdtempSync, rmSync } from 'node:fs';
import crypto from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import taskcluster from 'taskcluster-client';
import { startEmbedded, type EmbeddedDeployment } from '../../lib/embedded/server.ts';
import { silentLog } from '../../lib/log/worker-log.ts';
import { ArtifactPublisher, type ArtifactPublisherOptions } from '../../lib/artifacts/upload.ts';
import type { Credentials } from '../../lib/queue/taskcluster.ts';

export interface Deployment { deployment: EmbeddedDeployment; rootUrl: string; queue: any; close(): Promise<void> }

export async function startDeployment(): Promise<Deployment> {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'upload-test-'));
  const deployment = await startEmbedded({ stateDir, port: 0, log: silentLog, claimWorkWaitSeconds: 1 });
  return {
    deployment, rootUrl: deployment.rootUrl,
    queue: new taskcluster.Queue({ rootUrl: deployment.rootUrl, credentials: deployment.credentials, retries: 0 }),
    async close() { await deployment.close(); rmSync(stateDir, { recursive: true, force: true }); },
  };
}

export interface ClaimedRun { taskId: string; runId: number; credentials: Credentials; expires: string }

/** Creates a task on a queue of its own and claims it, as a worker would. */
export async function claimedRun(d: Deployment): Promise<ClaimedRun> {
  const taskQueueId = `proj-test/up${crypto.randomBytes(5).toString('hex')}`;
  const taskId = taskcluster.slugid();
  await d.queue.createTask(taskId, {
    taskQueueId, created: new Date().toJSON(), deadline: taskcluster.fromNow('1 hour').toJSON(),
    expires: taskcluster.fromNow('2 days').toJSON(),
    payload: {}, metadata: { name: 'upload test', description: 'artifact uploads', owner: 'tests@example.com', source: 'https://example.com/tests' },
  });
  const { tasks } = await d.queue.claimWork(taskQueueId, { workerGroup: 'wg', workerId: 'w1', tasks: 1 });
  if (tasks.length !== 1) throw new Error('no task claimed');
  return { taskId, runId: tasks[0].runId, credentials: tasks[0].credentials, expires: taskcluster.fromNow('1 day').toJSON() };
}

export function publisherFor(rootUrl: string, run: ClaimedRun, options: Partial<ArtifactPublisherOptions> = {}): ArtifactPublisher {
  return new ArtifactPublisher({
    rootUrl, taskId: run.taskId, runId: run.runId, credentials: () => run.credentials,
    retry: { retries: 3, baseDelayMs: 10 }, ...options,
  });
}

/** Downloads an artifact with taskcluster.downloadArtifact; returns its sha256, size, bytes (if small) and type. */
export async function downloadArtifact(queue: any, taskId: string, name: string): Promise<{ sha256: string; size: number; text: string; contentType: string }> {
  let hash = crypto.createHash('sha256');
  let size = 0;
  let head: Buffer[] = [];
  const contentType = await taskcluster.downloadArtifact({
    taskId, name, queue, retries: 0,
    streamFactory: async () => {
      hash = crypto.createHash('sha256'); size = 0; head = [];
      return new Writable({
        write(chunk: Buffer, _e, cb) { hash.update(chunk); if (size < 1 << 20) head.push(chunk); size += chunk.length; cb(); },
      });
    },
  });
  return { sha256: hash.digest('hex'), size, text: Buffer.concat(head).toString('utf8'), contentType };
}

export function sha256(data: Buffer | string): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}
