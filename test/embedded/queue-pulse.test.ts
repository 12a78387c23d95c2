// The Pulse messages the embedded queue builds, as the real queue publishes them: one per run
// state change and per present artifact, each valid against its exchange schema (checked again by
// startCheckedEmbedded at close), and a message that breaks its schema answered as the real v106
// queue answers it (the `contentLength` trap: 500 from finishArtifact, the artifact present anyway).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import taskcluster from 'taskcluster-client';
import { startQueue, newTaskQueueId, slugid, taskDef, claimOne, fromNow, outcome, type TestQueue } from './queue-fixtures.ts';

let q: TestQueue;
/** The messages the tests break on purpose; every other message must pass (startCheckedEmbedded checks them all at close). */
let expectedRejections = 0;
before(async () => { q = await startQueue(); });
after(async () => {
  assert.equal(q.deployment.rejectedMessages().length, expectedRejections);
  if (expectedRejections === 0) await q.close();
  else await assert.rejects(q.close(), new RegExp(`${expectedRejections} queue message\\(s\\) break their exchange schemas`), 'the checked deployment reports them');
});

const messagesOf = (taskId: string) => q.deployment.published()
  .filter((m) => (m.message.status as { taskId: string }).taskId === taskId)
  .map((m) => `${m.exchange}${m.message.runId === undefined ? '' : `/${m.message.runId}`}`);

async function putInline(created: any, data: Buffer): Promise<void> {
  const object = new taskcluster.Object({ rootUrl: q.deployment.rootUrl, credentials: created.credentials, retries: 0 });
  await object.createUpload(created.name, {
    projectId: created.projectId, uploadId: created.uploadId, expires: created.expires,
    proposedUploadMethods: { dataInline: { contentType: 'text/plain', objectData: data.toString('base64') } },
  });
  await object.finishUpload(created.name, { projectId: created.projectId, uploadId: created.uploadId, hashes: { sha256: createHash('sha256').update(data).digest('hex') } });
}

test('a task\'s life is announced as the real queue announces it: defined, pending, running, artifacts, completed', async () => {
  const tq = newTaskQueueId();
  const taskId = slugid();
  await q.queue.createTask(taskId, taskDef(tq, { routes: ['index.some.where'], tags: { kind: 'pulse-test' } }));
  const claim = await claimOne(q.queue, tq);
  const worker = q.client(claim.credentials);
  const expires = fromNow('1 day');
  await worker.createArtifact(taskId, 0, 'public/ref', { storageType: 'reference', url: 'https://example.com/', expires, contentType: 'text/plain' });
  await worker.createArtifact(taskId, 0, 'public/s3.bin', { storageType: 's3', expires, contentType: 'application/octet-stream' });
  const created = await worker.createArtifact(taskId, 0, 'public/obj.txt', { storageType: 'object', expires, contentType: 'text/plain' });
  assert.deepEqual(messagesOf(taskId), ['task-defined', 'task-pending/0', 'task-running/0', 'artifact-created/0'], 'no message for s3, nor for an object before it is finished');
  await putInline(created, Buffer.from('hello'));
  await worker.finishArtifact(taskId, 0, 'public/obj.txt', { uploadId: created.uploadId });
  await worker.reportCompleted(taskId, 0);
  assert.deepEqual(messagesOf(taskId), ['task-defined', 'task-pending/0', 'task-running/0', 'artifact-created/0', 'artifact-created/0', 'task-completed/0']);

  const mine = q.deployment.published().filter((m) => (m.message.status as { taskId: string }).taskId === taskId);
  const running = mine.find((m) => m.exchange === 'task-running')!;
  assert.equal(running.message.workerGroup, 'wg');
  assert.equal(running.message.workerId, 'w1');
  assert.equal(running.message.takenUntil, claim.takenUntil.replace('+00:00', 'Z'));
  assert.deepEqual(running.message.task, { tags: { kind: 'pulse-test' } });
  assert.deepEqual(running.routes, ['index.some.where']);
  assert.equal((mine[0]!.message.status as { state: string }).state, 'unscheduled', 'task-defined carries the task before it was scheduled');
  assert.deepEqual(mine.filter((m) => m.exchange === 'artifact-created').map((m) => (m.message.artifact as { name: string }).name), ['public/ref', 'public/obj.txt']);
  assert.ok(mine.every((m) => m.message.version === 1));
});

test('failed, and an exception with a retry: task-exception for the run, then task-pending for the new one', async () => {
  const tq = newTaskQueueId();
  const failing = slugid();
  await q.queue.createTask(failing, taskDef(tq));
  await claimOne(q.queue, tq);
  await q.queue.reportFailed(failing, 0);
  const retried = slugid();
  await q.queue.createTask(retried, taskDef(tq));
  await claimOne(q.queue, tq);
  await q.queue.reportException(retried, 0, { reason: 'worker-shutdown' });
  assert.deepEqual(messagesOf(failing), ['task-defined', 'task-pending/0', 'task-running/0', 'task-failed/0']);
  assert.deepEqual(messagesOf(retried), ['task-defined', 'task-pending/0', 'task-running/0', 'task-exception/0', 'task-pending/1']);
});

test('contentLength in createArtifact: finishArtifact answers 500 naming the message schema, as the real v106 queue; the artifact is present all the same', async () => {
  const tq = newTaskQueueId();
  const taskId = slugid();
  await q.queue.createTask(taskId, taskDef(tq));
  const claim = await claimOne(q.queue, tq);
  const worker = q.client(claim.credentials);
  const expires = fromNow('1 day');
  const s3 = await outcome(worker.createArtifact(taskId, 0, 'public/s3.txt', { storageType: 's3', expires, contentType: 'text/plain', contentLength: 5 }));
  assert.equal(s3.statusCode, 200, 'no message for s3 artifacts, so the field does no harm there');
  const created = await worker.createArtifact(taskId, 0, 'public/x.txt', { storageType: 'object', expires, contentType: 'text/plain', contentLength: 5 });
  await putInline(created, Buffer.from('hello'));
  for (const attempt of ['first', 'repeated']) {
    const finished = await outcome(worker.finishArtifact(taskId, 0, 'public/x.txt', { uploadId: created.uploadId }));
    assert.equal(finished.statusCode, 500, attempt);
    assert.equal(finished.code, 'InternalServerError');
    assert.match(finished.message, /Message validation failed/);
    assert.match(finished.message, /artifact-created-message\.json#/);
    assert.match(finished.message, /data\/artifact must NOT have additional properties: "contentLength"/);
  }
  const res = await fetch(`${q.deployment.rootUrl}/api/queue/v1/task/${taskId}/runs/0/artifacts/public%2Fx.txt`, { redirect: 'manual' });
  assert.equal(res.status, 303, 'present: the real queue marks it present before it publishes');
  assert.deepEqual(q.deployment.rejectedMessages().map((r) => r.exchange), ['artifact-created', 'artifact-created']);
  expectedRejections = 2;
});
