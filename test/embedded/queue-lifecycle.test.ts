// A task's whole life in the embedded queue, driven through taskcluster-client over HTTP:
// created, claimed, reclaimed, resolved; reruns and the end of retries.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startQueue, newTaskQueueId, slugid, taskDef, outcome, assertSchema, claimOne, type TestQueue } from './queue-fixtures.ts';

let tq: TestQueue;

before(async () => { tq = await startQueue({ claimTimeoutSeconds: 60, claimWorkWaitSeconds: 1 }); });
after(async () => { await tq.close(); });

test('a new task is pending with run 0 "scheduled" and the documented defaults', async () => {
  const taskQueueId = newTaskQueueId();
  const taskId = slugid();
  const created = await tq.queue.createTask(taskId, taskDef(taskQueueId));
  assertSchema('task-status-response', created);
  const { status } = created;
  assert.equal(status.state, 'pending');
  assert.deepEqual(status.runs.map((r: any) => [r.runId, r.state, r.reasonCreated]), [[0, 'pending', 'scheduled']]);
  const [provisionerId, workerType] = taskQueueId.split('/');
  assert.equal(status.taskQueueId, taskQueueId);
  assert.equal(status.provisionerId, provisionerId);
  assert.equal(status.workerType, workerType);
  assert.equal(status.retriesLeft, 5);

  const task = await tq.queue.task(taskId);
  assertSchema('task', task);
  assert.equal(task.schedulerId, '-');
  assert.equal(task.projectId, 'none');
  assert.equal(task.priority, 'lowest');
  assert.equal(task.retries, 5);
  assert.equal(task.requires, 'all-completed');
  assert.equal(task.taskGroupId, taskId);
  assert.deepEqual([task.routes, task.scopes, task.dependencies, task.tags, task.extra], [[], [], [], {}, {}]);
  assert.equal(task.provisionerId, provisionerId);
  assert.equal(task.workerType, workerType);
  // expires defaults to one year after the deadline
  assert.equal(new Date(task.expires).getUTCFullYear(), new Date(task.deadline).getUTCFullYear() + 1);

  assertSchema('task-status-response', await tq.queue.status(taskId));
});

test('legacy provisionerId + workerType are accepted and reported with taskQueueId', async () => {
  const taskId = slugid();
  const def = taskDef('ignored/x');
  delete def.taskQueueId;
  const { status } = await tq.queue.createTask(taskId, { ...def, provisionerId: 'legacy-prov', workerType: 'legacy-type' });
  assert.equal(status.taskQueueId, 'legacy-prov/legacy-type');
  const task = await tq.queue.task(taskId);
  assert.equal(task.taskQueueId, 'legacy-prov/legacy-type');
  const mismatch = await outcome(tq.queue.createTask(slugid(), { ...def, provisionerId: 'a', workerType: 'b', taskQueueId: 'a/c' }));
  assert.equal(mismatch.statusCode, 400);
});

test('claim, reclaim and complete: the run is running, then completed; completing twice succeeds', async () => {
  const taskQueueId = newTaskQueueId();
  const taskId = slugid();
  await tq.queue.createTask(taskId, taskDef(taskQueueId, { scopes: ['secrets:get:thing'] }));
  const claim = await claimOne(tq.queue, taskQueueId);
  assert.equal(claim.status.taskId, taskId);
  assert.equal(claim.runId, 0);
  assert.equal(claim.workerGroup, 'wg');
  assert.equal(claim.workerId, 'w1');
  assert.equal(claim.task.taskQueueId, taskQueueId);
  assert.equal(claim.status.state, 'running');
  const run = claim.status.runs[0];
  assert.equal(run.state, 'running');
  assert.ok(run.started && run.takenUntil);
  assert.match(run.takenUntil, /Z$/);
  // the top-level takenUntil is written with an offset, as the real queue does
  assert.match(claim.takenUntil, /\+00:00$/);
  assert.equal(Date.parse(claim.takenUntil), Date.parse(run.takenUntil));
  const certificate = JSON.parse(claim.credentials.certificate);
  assert.equal(certificate.expiry, Date.parse(claim.takenUntil));
  assert.deepEqual(certificate.scopes, [
    `queue:reclaim-task:${taskId}/0`, `queue:resolve-task:${taskId}/0`, `queue:create-artifact:${taskId}/0`, 'secrets:get:thing',
  ]);

  const worker = tq.client(claim.credentials);
  await new Promise((r) => setTimeout(r, 20));
  const reclaim = await worker.reclaimTask(taskId, 0);
  assertSchema('task-reclaim-response', reclaim);
  assert.ok(Date.parse(reclaim.takenUntil) > Date.parse(claim.takenUntil), 'reclaim moves takenUntil forward');
  assert.equal(reclaim.status.runs[0].takenUntil, reclaim.takenUntil);
  assert.equal('task' in reclaim, false);

  const fresh = tq.client(reclaim.credentials);
  const done = await fresh.reportCompleted(taskId, 0);
  assertSchema('task-status-response', done);
  assert.equal(done.status.state, 'completed');
  assert.equal(done.status.runs[0].reasonResolved, 'completed');
  assert.ok(done.status.runs[0].resolved);

  const again = await fresh.reportCompleted(taskId, 0);
  assert.equal(again.status.state, 'completed');
  const failed = await outcome(fresh.reportFailed(taskId, 0));
  assert.equal(failed.statusCode, 409);
  assert.equal(failed.code, 'RequestConflict');
  const exception = await outcome(fresh.reportException(taskId, 0, { reason: 'internal-error' }));
  assert.equal(exception.statusCode, 409);
  const reclaimAfter = await outcome(fresh.reclaimTask(taskId, 0));
  assert.equal(reclaimAfter.statusCode, 409);
});

test('reportFailed resolves the task failed', async () => {
  const taskQueueId = newTaskQueueId();
  const taskId = slugid();
  await tq.queue.createTask(taskId, taskDef(taskQueueId));
  const claim = await claimOne(tq.queue, taskQueueId);
  const { status } = await tq.client(claim.credentials).reportFailed(taskId, 0);
  assert.equal(status.state, 'failed');
  assert.equal(status.runs[0].reasonResolved, 'failed');
  assert.equal((await outcome(tq.client(claim.credentials).reportCompleted(taskId, 0))).statusCode, 409);
});

test('worker-shutdown and intermittent-task add retry runs; when retries run out the task ends exception', async () => {
  const taskQueueId = newTaskQueueId();
  const taskId = slugid();
  await tq.queue.createTask(taskId, taskDef(taskQueueId, { retries: 2 }));

  const first = await claimOne(tq.queue, taskQueueId);
  const afterShutdown = await tq.client(first.credentials).reportException(taskId, 0, { reason: 'worker-shutdown' });
  assertSchema('task-status-response', afterShutdown);
  assert.equal(afterShutdown.status.state, 'pending');
  assert.equal(afterShutdown.status.retriesLeft, 1);
  assert.deepEqual(afterShutdown.status.runs.map((r: any) => [r.state, r.reasonCreated, r.reasonResolved]), [
    ['exception', 'scheduled', 'worker-shutdown'], ['pending', 'retry', undefined],
  ]);
  // reporting the same exception again is accepted
  assert.equal((await tq.client(first.credentials).reportException(taskId, 0, { reason: 'worker-shutdown' })).status.runs.length, 2);

  const second = await claimOne(tq.queue, taskQueueId);
  assert.equal(second.runId, 1);
  const afterIntermittent = await tq.client(second.credentials).reportException(taskId, 1, { reason: 'intermittent-task' });
  assert.equal(afterIntermittent.status.runs[2].reasonCreated, 'task-retry');
  assert.equal(afterIntermittent.status.retriesLeft, 0);

  const third = await claimOne(tq.queue, taskQueueId);
  assert.equal(third.runId, 2);
  const final = await tq.client(third.credentials).reportException(taskId, 2, { reason: 'worker-shutdown' });
  assert.equal(final.status.state, 'exception');
  assert.equal(final.status.runs.length, 3);
  assert.equal(final.status.runs[2].reasonResolved, 'worker-shutdown');

  // the old run's credentials cannot touch the new run
  const denied = await outcome(tq.client(first.credentials).reportCompleted(taskId, 2));
  assert.equal(denied.statusCode, 403);
});

for (const reason of ['malformed-payload', 'internal-error', 'resource-unavailable']) {
  test(`reportException ${reason} ends the task at once, whatever retries remain`, async () => {
    const taskQueueId = newTaskQueueId();
    const taskId = slugid();
    await tq.queue.createTask(taskId, taskDef(taskQueueId));
    const claim = await claimOne(tq.queue, taskQueueId);
    const { status } = await tq.client(claim.credentials).reportException(taskId, 0, { reason });
    assert.equal(status.state, 'exception');
    assert.equal(status.runs.length, 1);
    assert.equal(status.runs[0].reasonResolved, reason);
    assert.equal(status.retriesLeft, 5);
  });
}

test('an unknown exception reason is a 400 and leaves the run running', async () => {
  const taskQueueId = newTaskQueueId();
  const taskId = slugid();
  await tq.queue.createTask(taskId, taskDef(taskQueueId));
  const claim = await claimOne(tq.queue, taskQueueId);
  const bad = await outcome(tq.client(claim.credentials).reportException(taskId, 0, { reason: 'felt-like-it' }));
  assert.equal(bad.statusCode, 400);
  assert.equal(bad.code, 'InputValidationError');
  assert.equal((await tq.queue.status(taskId)).status.state, 'running');
});

test('rerunTask gives a resolved task a new pending run with reasonCreated "rerun"', async () => {
  const taskQueueId = newTaskQueueId();
  const taskId = slugid();
  await tq.queue.createTask(taskId, taskDef(taskQueueId, { retries: 1 }));
  const claim = await claimOne(tq.queue, taskQueueId);
  await tq.client(claim.credentials).reportFailed(taskId, 0);
  const { status } = await tq.queue.rerunTask(taskId);
  assertSchema('task-status-response', { status });
  assert.equal(status.state, 'pending');
  assert.equal(status.runs[1].reasonCreated, 'rerun');
  // a pending task is left as it is
  assert.equal((await tq.queue.rerunTask(taskId)).status.runs.length, 2);
});

test('unknown tasks and runs are 404; a malformed taskId is 400', async () => {
  assert.equal((await outcome(tq.queue.task(slugid()))).statusCode, 404);
  assert.equal((await outcome(tq.queue.status(slugid()))).statusCode, 404);
  assert.equal((await outcome(tq.queue.status('not-a-slug'))).statusCode, 400);
  const taskQueueId = newTaskQueueId();
  const taskId = slugid();
  await tq.queue.createTask(taskId, taskDef(taskQueueId));
  assert.equal((await outcome(tq.queue.reclaimTask(taskId, 3))).statusCode, 404);
  assert.equal((await outcome(tq.queue.reportCompleted(taskId, 0))).statusCode, 409, 'a pending run cannot be completed');
});
