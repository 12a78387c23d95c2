// Task dependencies: a dependent stays `unscheduled` until its dependencies are completed
// (all-completed) or resolved (all-resolved), then becomes pending by itself.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startQueue, newTaskQueueId, slugid, fromNow, taskDef, outcome, assertSchema, claimOne, eventually, type TestQueue } from './queue-fixtures.ts';

let tq: TestQueue;

before(async () => { tq = await startQueue({ claimTimeoutSeconds: 60, claimWorkWaitSeconds: 1, sweepIntervalSeconds: 0.2 }); });
after(async () => { await tq.close(); });

const stateOf = async (taskId: string): Promise<string> => (await tq.queue.status(taskId)).status.state;

async function becomes(taskId: string, state: string): Promise<void> {
  await eventually(async () => ((await stateOf(taskId)) === state ? true : undefined), 10_000, `${taskId} to be ${state}`);
}

/** Claims the task (it must be the only pending one of its queue) and resolves it. */
async function resolve(taskQueueId: string, taskId: string, how: 'completed' | 'failed' | 'exception'): Promise<void> {
  const claim = await claimOne(tq.queue, taskQueueId);
  assert.equal(claim.status.taskId, taskId);
  const asWorker = tq.client(claim.credentials);
  if (how === 'completed') await asWorker.reportCompleted(taskId, claim.runId);
  else if (how === 'failed') await asWorker.reportFailed(taskId, claim.runId);
  else await asWorker.reportException(taskId, claim.runId, { reason: 'malformed-payload' });
}

test('all-completed: the dependent is unscheduled until every dependency completes, then pending', async () => {
  const depsQueue = newTaskQueueId();
  const taskQueueId = newTaskQueueId();
  const a = slugid();
  const b = slugid();
  const c = slugid();
  await tq.queue.createTask(a, taskDef(depsQueue));
  await tq.queue.createTask(b, taskDef(depsQueue));
  const created = await tq.queue.createTask(c, taskDef(taskQueueId, { dependencies: [a, b] }));
  assert.equal(created.status.state, 'unscheduled');
  assert.deepEqual(created.status.runs, []);

  await resolve(depsQueue, a, 'completed');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(await stateOf(c), 'unscheduled', 'one dependency is not enough');

  await resolve(depsQueue, b, 'completed');
  await becomes(c, 'pending');
  const { status } = await tq.queue.status(c);
  assert.deepEqual(status.runs.map((r: any) => [r.runId, r.reasonCreated]), [[0, 'scheduled']]);
  assert.equal((await claimOne(tq.queue, taskQueueId)).status.taskId, c);

  const dependents = await tq.queue.listDependentTasks(a);
  assertSchema('list-dependent-tasks-response', dependents);
  assert.deepEqual(dependents.tasks.map((t: any) => t.status.taskId), [c]);
});

test('all-completed: a failed dependency leaves the dependent unscheduled until its deadline', async () => {
  const depsQueue = newTaskQueueId();
  const taskQueueId = newTaskQueueId();
  const a = slugid();
  const c = slugid();
  await tq.queue.createTask(a, taskDef(depsQueue));
  await tq.queue.createTask(c, taskDef(taskQueueId, { dependencies: [a], deadline: fromNow('2 seconds') }));
  await resolve(depsQueue, a, 'failed');
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(await stateOf(c), 'unscheduled');
  await becomes(c, 'exception');
  const { status } = await tq.queue.status(c);
  assert.deepEqual(status.runs.map((r: any) => [r.reasonCreated, r.reasonResolved]), [['exception', 'deadline-exceeded']]);
});

test('all-completed: a dependency rerun after failing, then completed, schedules the dependent', async () => {
  const depsQueue = newTaskQueueId();
  const taskQueueId = newTaskQueueId();
  const a = slugid();
  const c = slugid();
  await tq.queue.createTask(a, taskDef(depsQueue));
  await tq.queue.createTask(c, taskDef(taskQueueId, { dependencies: [a] }));
  await resolve(depsQueue, a, 'failed');
  await tq.queue.rerunTask(a);
  await resolve(depsQueue, a, 'completed');
  await becomes(c, 'pending');
});

test('all-resolved: any resolution of the dependencies schedules the dependent', async () => {
  const depsQueue = newTaskQueueId();
  const taskQueueId = newTaskQueueId();
  const a = slugid();
  const b = slugid();
  const c = slugid();
  await tq.queue.createTask(a, taskDef(depsQueue));
  await tq.queue.createTask(b, taskDef(depsQueue));
  await tq.queue.createTask(c, taskDef(taskQueueId, { dependencies: [a, b], requires: 'all-resolved' }));
  await resolve(depsQueue, a, 'failed');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(await stateOf(c), 'unscheduled');
  await resolve(depsQueue, b, 'exception');
  await becomes(c, 'pending');
});

test('a dependency that already completed does not hold the task back', async () => {
  const depsQueue = newTaskQueueId();
  const a = slugid();
  await tq.queue.createTask(a, taskDef(depsQueue));
  await resolve(depsQueue, a, 'completed');
  const { status } = await tq.queue.createTask(slugid(), taskDef(newTaskQueueId(), { dependencies: [a] }));
  assert.equal(status.state, 'pending');
});

test('a task depending on itself waits until scheduleTask', async () => {
  const taskQueueId = newTaskQueueId();
  const taskId = slugid();
  const { status } = await tq.queue.createTask(taskId, taskDef(taskQueueId, { dependencies: [taskId] }));
  assert.equal(status.state, 'unscheduled');
  const scheduled = await tq.queue.scheduleTask(taskId);
  assertSchema('task-status-response', scheduled);
  assert.equal(scheduled.status.state, 'pending');
});

test('a dependency that expires before the task deadline is refused', async () => {
  const depsQueue = newTaskQueueId();
  const a = slugid();
  await tq.queue.createTask(a, taskDef(depsQueue, { deadline: fromNow('10 minutes'), expires: fromNow('20 minutes') }));
  const refused = await outcome(tq.queue.createTask(slugid(), taskDef(newTaskQueueId(), { dependencies: [a], deadline: fromNow('1 hour') })));
  assert.equal(refused.statusCode, 400);
  assert.match(refused.message, /expire/);
});
