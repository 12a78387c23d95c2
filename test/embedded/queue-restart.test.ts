// The embedded state is durable: a deployment restarted on the same state directory keeps its
// tasks, runs, claims and workers (claim credentials issued before still work), object and
// artifact data, index entries and purge requests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import taskcluster from 'taskcluster-client';
import { startQueue, newTaskQueueId, slugid, taskDef, claimOne, fromNow, type TestQueue } from './queue-fixtures.ts';

test('restarting on the same state directory keeps tasks, runs and claims', async () => {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'queue-restart-'));
  try {
    const taskQueueId = newTaskQueueId();
    const running = slugid();
    const pending = slugid();
    const first = await startQueue({ claimTimeoutSeconds: 60 }, stateDir);
    await first.queue.createTask(running, taskDef(taskQueueId, { priority: 'high' }));
    await first.queue.createTask(pending, taskDef(taskQueueId));
    const claim = await claimOne(first.queue, taskQueueId);
    assert.equal(claim.status.taskId, running);
    const before = await first.queue.status(pending);
    await first.close();

    const second = await startQueue({ claimTimeoutSeconds: 60 }, stateDir);
    try {
      assert.deepEqual(await second.queue.status(pending), before);
      assert.equal((await second.queue.task(running)).priority, 'high');
      // the worker carries on with the credentials it was given before the restart
      const asWorker = second.client(claim.credentials);
      assert.equal((await asWorker.reclaimTask(running, 0)).status.state, 'running');
      assert.equal((await asWorker.reportCompleted(running, 0)).status.state, 'completed');
      assert.equal((await claimOne(second.queue, taskQueueId)).status.taskId, pending);
      const [provisionerId, workerType] = taskQueueId.split('/');
      const seen = await second.queue.getWorker(provisionerId, workerType, 'wg', 'w1');
      assert.equal(seen.recentTasks.length, 2);
    } finally {
      await second.close();
    }
  } finally {
    rmSync(stateDir, { recursive: true, force: true });
  }
});

test('restarting keeps object data, s3 artifact data, index entries and purge requests', async () => {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'queue-restart-data-'));
  try {
    const taskQueueId = newTaskQueueId();
    const taskId = slugid();
    const objectBytes = crypto.randomBytes(20 * 1024);
    const first = await startQueue({}, stateDir);
    const clients = (d: TestQueue) => ({
      object: new taskcluster.Object({ rootUrl: d.deployment.rootUrl, credentials: d.deployment.credentials, retries: 0 }),
      index: new taskcluster.Index({ rootUrl: d.deployment.rootUrl, credentials: d.deployment.credentials, retries: 0 }),
      purgeCache: new taskcluster.PurgeCache({ rootUrl: d.deployment.rootUrl, credentials: d.deployment.credentials, retries: 0 }),
    });
    let before: { purges: unknown; indexed: unknown };
    try {
      const { object, index, purgeCache } = clients(first);
      await taskcluster.upload({
        projectId: 'proj', name: 'kept/object.bin', contentType: 'application/octet-stream', contentLength: objectBytes.length,
        expires: taskcluster.fromNow('1 day'), object, streamFactory: async () => Readable.from([objectBytes]), retries: 0,
      });
      await first.queue.createTask(taskId, taskDef(taskQueueId));
      const claim = await claimOne(first.queue, taskQueueId);
      const worker = first.client(claim.credentials);
      const s3 = await worker.createArtifact(taskId, 0, 'public/kept.txt', { storageType: 's3', contentType: 'text/plain', expires: fromNow('1 day') });
      assert.equal((await fetch(s3.putUrl, { method: 'PUT', body: 'kept s3 data', headers: { 'content-type': 'text/plain' } })).status, 200);
      await worker.reportCompleted(taskId, 0);
      await index.insertTask('restart.kept', { taskId, rank: 3, data: { kept: true }, expires: fromNow('1 day') });
      await purgeCache.purgeCache('restart-prov/restart-type', { cacheName: 'kept-cache' });
      before = {
        purges: await purgeCache.purgeRequests('restart-prov/restart-type'),
        indexed: await index.findTask('restart.kept'),
      };
    } finally {
      await first.close();
    }

    const second = await startQueue({}, stateDir);
    try {
      const { object, index, purgeCache } = clients(second);
      const chunks: Buffer[] = [];
      await taskcluster.download({
        name: 'kept/object.bin', object, retries: 0,
        streamFactory: async () => new Writable({ write(c: Buffer, _e, cb) { chunks.push(c); cb(); } }),
      });
      assert.ok(Buffer.concat(chunks).equals(objectBytes), 'the object data survived the restart');
      const location = (await fetch(second.queue.buildUrl(second.queue.getArtifact, taskId, 0, 'public/kept.txt'), { redirect: 'manual' })).headers.get('location')!;
      assert.equal(await (await fetch(location)).text(), 'kept s3 data', 'the s3 artifact data survived the restart');
      assert.deepEqual(await index.findTask('restart.kept'), before.indexed);
      assert.deepEqual(await purgeCache.purgeRequests('restart-prov/restart-type'), before.purges);
    } finally {
      await second.close();
    }
  } finally {
    rmSync(stateDir, { recursive: true, force: true });
  }
});
