// What time and cancellation do to tasks: claims that are not renewed expire (and retry),
// deadlines resolve unfinished tasks, expired tasks disappear, cancelTask stops a task and
// its worker learns it through 409s.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startQueue, newTaskQueueId, slugid, fromNow, taskDef, outcome, assertSchema, claimOne, eventually, type TestQueue } from './queue-fixtures.ts';

let tq: TestQueue;

before(async () => { tq = await startQueue({ claimTimeoutSeconds: 1, claimWorkWaitSeconds: 1, sweepIntervalSeconds: 0.2 }); });
after(async () => { await tq.close(); });

async function statusWhen(taskId: string, predicate: (status: any) => boolean, what: string): Promise<any> {
  return eventually(async () => {
    const { status } = await tq.queue.status(taskId);
    return predicate(status) ? status : undefined;
  }, 10_000, what);
}

test('a claim that is not reclaimed expires: claim-expired, then a retry run; without retries the task ends exception', async () => {
  const taskQueueId = newTaskQueueId();
  const taskId = slugid();
  await tq.queue.createTask(taskId, taskDef(taskQueueId, { retries: 1 }));
  const first = await claimOne(tq.queue, taskQueueId);

  const retried = await statusWhen(taskId, (s) => s.runs.length === 2, 'the retry run');
  assertSchema('task-status-response', { status: retried });
  assert.deepEqual(retried.runs.map((r: any) => [r.state, r.reasonCreated, r.reasonResolved]), [
    ['exception', 'scheduled', 'claim-expired'], ['pending', 'retry', undefined],
  ]);
  assert.equal(retried.retriesLeft, 0);
  const late = await outcome(tq.queue.reclaimTask(taskId, 0));
  assert.equal(late.statusCode, 409);
  assert.equal((await outcome(tq.client(first.credentials).reportCompleted(taskId, 0))).statusCode, 409);

  await claimOne(tq.queue, taskQueueId);
  const ended = await statusWhen(taskId, (s) => s.state === 'exception', 'the final claim expiry');
  assert.equal(ended.runs.length, 2);
  assert.equal(ended.runs[1].reasonResolved, 'claim-expired');
});

test('reclaiming in time keeps the run running past the claim timeout', async () => {
  const taskQueueId = newTaskQueueId();
  const taskId = slugid();
  await tq.queue.createTask(taskId, taskDef(taskQueueId));
  const claim = await claimOne(tq.queue, taskQueueId);
  let credentials = claim.credentials;
  for (let i = 0; i < 6; i++) {
    await new Promise((r) => setTimeout(r, 300));
    credentials = (await tq.client(credentials).reclaimTask(taskId, 0)).credentials;
  }
  const { status } = await tq.queue.status(taskId);
  assert.equal(status.state, 'running');
  assert.equal(status.runs.length, 1);
  assert.equal((await tq.client(credentials).reportCompleted(taskId, 0)).status.state, 'completed');
});

test('a pending task still unresolved at its deadline ends exception/deadline-exceeded', async () => {
  const taskQueueId = newTaskQueueId();
  const taskId = slugid();
  await tq.queue.createTask(taskId, taskDef(taskQueueId, { deadline: fromNow('1 second') }));
  const status = await statusWhen(taskId, (s) => s.state === 'exception', 'the deadline');
  assert.deepEqual(status.runs.map((r: any) => [r.state, r.reasonResolved]), [['exception', 'deadline-exceeded']]);
  assert.deepEqual((await tq.queue.claimWork(taskQueueId, { workerGroup: 'wg', workerId: 'w', tasks: 1 })).tasks, []);
});

test('a running task at its deadline ends deadline-exceeded and its worker gets 409', async () => {
  const slowClaims = await startQueue({ claimTimeoutSeconds: 60, sweepIntervalSeconds: 0.2 });
  try {
    const taskQueueId = newTaskQueueId();
    const taskId = slugid();
    await slowClaims.queue.createTask(taskId, taskDef(taskQueueId, { deadline: fromNow('2 seconds') }));
    const claim = await claimOne(slowClaims.queue, taskQueueId);
    const status = await eventually(async () => {
      const s = (await slowClaims.queue.status(taskId)).status;
      return s.state === 'exception' ? s : undefined;
    }, 10_000, 'the deadline');
    assert.equal(status.runs[0].reasonResolved, 'deadline-exceeded');
    const worker = slowClaims.client(claim.credentials);
    assert.equal((await outcome(worker.reclaimTask(taskId, 0))).statusCode, 409);
    assert.equal((await outcome(worker.reportCompleted(taskId, 0))).statusCode, 409);
  } finally {
    await slowClaims.close();
  }
});

test('an expired task is deleted', async () => {
  const taskQueueId = newTaskQueueId();
  const taskId = slugid();
  await tq.queue.createTask(taskId, taskDef(taskQueueId, { deadline: fromNow('1 second'), expires: fromNow('2 seconds') }));
  assert.equal((await tq.queue.status(taskId)).status.state, 'pending');
  await eventually(async () => ((await outcome(tq.queue.task(taskId))).statusCode === 404 ? true : undefined), 10_000, 'expiry');
  assert.equal((await outcome(tq.queue.status(taskId))).statusCode, 404);
});

test('cancelling a pending task resolves it exception/canceled; nobody can claim it', async () => {
  const taskQueueId = newTaskQueueId();
  const taskId = slugid();
  await tq.queue.createTask(taskId, taskDef(taskQueueId));
  const { status } = await tq.queue.cancelTask(taskId);
  assertSchema('task-status-response', { status });
  assert.equal(status.state, 'exception');
  assert.deepEqual(status.runs.map((r: any) => [r.runId, r.state, r.reasonResolved]), [[0, 'exception', 'canceled']]);
  assert.deepEqual((await tq.queue.claimWork(taskQueueId, { workerGroup: 'wg', workerId: 'w', tasks: 1 })).tasks, []);
  // cancelling again changes nothing
  assert.deepEqual((await tq.queue.cancelTask(taskId)).status, status);
});

test('cancelling a running task: the worker gets 409 on reclaim and on reporting', async () => {
  const slowClaims = await startQueue({ claimTimeoutSeconds: 60 });
  try {
    const taskQueueId = newTaskQueueId();
    const taskId = slugid();
    await slowClaims.queue.createTask(taskId, taskDef(taskQueueId));
    const claim = await claimOne(slowClaims.queue, taskQueueId);
    const { status } = await slowClaims.queue.cancelTask(taskId);
    assert.equal(status.runs[0].reasonResolved, 'canceled');
    assert.equal(status.runs[0].workerId, 'w1');
    const worker = slowClaims.client(claim.credentials);
    const reclaim = await outcome(worker.reclaimTask(taskId, 0));
    assert.equal(reclaim.statusCode, 409);
    assert.equal(reclaim.code, 'RequestConflict');
    assert.equal((await outcome(worker.reportCompleted(taskId, 0))).statusCode, 409);
    assert.equal((await outcome(worker.reportException(taskId, 0, { reason: 'worker-shutdown' }))).statusCode, 409);
  } finally {
    await slowClaims.close();
  }
});

test('cancelling an unscheduled task adds a run resolved exception/canceled', async () => {
  const taskQueueId = newTaskQueueId();
  const blocker = slugid();
  const taskId = slugid();
  await tq.queue.createTask(blocker, taskDef(taskQueueId));
  await tq.queue.createTask(taskId, taskDef(taskQueueId, { dependencies: [blocker] }));
  const { status } = await tq.queue.cancelTask(taskId);
  assert.deepEqual(status.runs.map((r: any) => [r.state, r.reasonCreated, r.reasonResolved]), [['exception', 'exception', 'canceled']]);
});

test('cancelTask needs a cancel-task scope for the task', async () => {
  const taskQueueId = newTaskQueueId();
  const taskId = slugid();
  await tq.queue.createTask(taskId, taskDef(taskQueueId));
  const limited = tq.client(tq.deployment.credentials, { authorizedScopes: ['queue:status:*'] });
  const denied = await outcome(limited.cancelTask(taskId));
  assert.equal(denied.statusCode, 403);
  assert.match(denied.message, new RegExp(`queue:cancel-task:-/${taskId}/${taskId}`));
  const allowed = tq.client(tq.deployment.credentials, { authorizedScopes: ['queue:cancel-task-in-project:none'] });
  assert.equal((await allowed.cancelTask(taskId)).status.state, 'exception');
});
