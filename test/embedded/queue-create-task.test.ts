// createTask as a scheduler sees it: idempotency, conflicts, the scopes it requires, bad
// input, task groups.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import taskcluster from 'taskcluster-client';
import { startQueue, newTaskQueueId, slugid, fromNow, taskDef, outcome, assertSchema, type TestQueue } from './queue-fixtures.ts';

let tq: TestQueue;

before(async () => { tq = await startQueue(); });
after(async () => { await tq.close(); });

/** A queue client limited to `scopes` (authorizedScopes on the root credentials). */
const limitedTo = (scopes: string[]) => tq.client(tq.deployment.credentials, { authorizedScopes: scopes });
const creationScopes = (taskQueueId: string) =>
  [`queue:create-task:lowest:${taskQueueId}`, 'queue:create-task:project:none', 'queue:scheduler-id:-'];

test('repeating an identical createTask succeeds; a different definition under the same taskId is 409', async () => {
  const taskQueueId = newTaskQueueId();
  const taskId = slugid();
  const def = taskDef(taskQueueId);
  const first = await tq.queue.createTask(taskId, def);
  const second = await tq.queue.createTask(taskId, def);
  assertSchema('task-status-response', second);
  assert.deepEqual(second.status, first.status);
  // the same definition spelled with the defaults written out is the same task
  const explicit = await tq.queue.createTask(taskId, { ...def, priority: 'lowest', retries: 5, routes: [], tags: {} });
  assert.deepEqual(explicit.status, first.status);

  const changed = await outcome(tq.queue.createTask(taskId, { ...def, payload: { other: true } }));
  assert.equal(changed.statusCode, 409);
  assert.equal(changed.code, 'RequestConflict');
  assert.equal((await tq.queue.task(taskId)).payload.image, 'busybox', 'the first definition stays');
});

test('creating a task needs the create-task, project and scheduler scopes; the 403 names what is missing', async () => {
  const taskQueueId = newTaskQueueId();
  const ok = await limitedTo(creationScopes(taskQueueId)).createTask(slugid(), taskDef(taskQueueId));
  assert.equal(ok.status.state, 'pending');

  const noCreate = await outcome(limitedTo(creationScopes(taskQueueId).slice(1)).createTask(slugid(), taskDef(taskQueueId)));
  assert.equal(noCreate.statusCode, 403);
  assert.equal(noCreate.code, 'InsufficientScopes');
  assert.match(noCreate.message, new RegExp(`queue:create-task:lowest:${taskQueueId}`));

  const noProject = await outcome(limitedTo(creationScopes(taskQueueId)).createTask(slugid(), taskDef(taskQueueId, { projectId: 'secret-project' })));
  assert.equal(noProject.statusCode, 403);
  assert.match(noProject.message, /queue:create-task:project:secret-project/);
});

test('a higher-priority create-task scope allows lower priorities, not higher ones', async () => {
  const taskQueueId = newTaskQueueId();
  const client = limitedTo([`queue:create-task:high:${taskQueueId}`, 'queue:create-task:project:none', 'queue:scheduler-id:-']);
  assert.equal((await outcome(client.createTask(slugid(), taskDef(taskQueueId, { priority: 'low' })))).statusCode, 200);
  assert.equal((await outcome(client.createTask(slugid(), taskDef(taskQueueId, { priority: 'high' })))).statusCode, 200);
  const highest = await outcome(client.createTask(slugid(), taskDef(taskQueueId, { priority: 'highest' })));
  assert.equal(highest.statusCode, 403);
  assert.match(highest.message, new RegExp(`queue:create-task:highest:${taskQueueId}`));
});

test('a task scope or route the caller lacks is a 403 naming it', async () => {
  const taskQueueId = newTaskQueueId();
  const client = limitedTo([...creationScopes(taskQueueId), 'secrets:get:mine', 'queue:route:index.mine.*']);
  assert.equal((await outcome(client.createTask(slugid(), taskDef(taskQueueId, { scopes: ['secrets:get:mine'], routes: ['index.mine.x'] })))).statusCode, 200);
  const scope = await outcome(client.createTask(slugid(), taskDef(taskQueueId, { scopes: ['secrets:get:theirs'] })));
  assert.equal(scope.statusCode, 403);
  assert.match(scope.message, /secrets:get:theirs/);
  const route = await outcome(client.createTask(slugid(), taskDef(taskQueueId, { routes: ['index.theirs.x'] })));
  assert.equal(route.statusCode, 403);
  assert.match(route.message, /queue:route:index\.theirs\.x/);
});

test('temporary credentials without queue:create-task cannot create tasks', async () => {
  const taskQueueId = newTaskQueueId();
  const temp = taskcluster.createTemporaryCredentials({
    scopes: ['queue:create-task:project:none', 'queue:scheduler-id:-'],
    expiry: taskcluster.fromNow('1 hour'),
    credentials: tq.deployment.credentials,
  });
  const denied = await outcome(tq.client(temp).createTask(slugid(), taskDef(taskQueueId)));
  assert.equal(denied.statusCode, 403);
  assert.match(denied.message, /queue:create-task:/);
});

test('schema violations are 400 InputValidationError naming the problem', async () => {
  const taskQueueId = newTaskQueueId();
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['unknown property', taskDef(taskQueueId, { colour: 'blue' }), /colour/],
    ['bad priority', taskDef(taskQueueId, { priority: 'urgent' }), /priority/],
    ['retries above 49', taskDef(taskQueueId, { retries: 50 }), /retries/],
    ['missing metadata', (() => { const d = taskDef(taskQueueId); delete d.metadata; return d; })(), /metadata/],
    ['bad taskQueueId', taskDef('NoSlash'), /taskQueueId/],
  ];
  for (const [name, def, pattern] of cases) {
    const result = await outcome(tq.queue.createTask(slugid(), def));
    assert.equal(result.statusCode, 400, name);
    assert.equal(result.code, 'InputValidationError', name);
    assert.match(result.message, pattern, name);
  }
});

test('bad timestamps and dependencies are 400 InputError with a readable reason', async () => {
  const taskQueueId = newTaskQueueId();
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['deadline in the past', { deadline: fromNow('-1 minute') }, /deadline/],
    ['deadline over 5 days', { deadline: fromNow('6 days') }, /5 days/],
    ['created an hour ago', { created: fromNow('-1 hour') }, /created/],
    ['expires before deadline', { deadline: fromNow('2 hours'), expires: fromNow('1 hour') }, /expires/],
    ['missing dependency', { dependencies: [slugid()] }, /non-existing/],
    ['scope ending in **', { scopes: ['secrets:**'] }, /\*\*/],
  ];
  for (const [name, extra, pattern] of cases) {
    const result = await outcome(tq.queue.createTask(slugid(), taskDef(taskQueueId, extra)));
    assert.equal(result.statusCode, 400, name);
    assert.equal(result.code, 'InputError', name);
    assert.match(result.message, pattern, name);
  }
});

test('no taskQueueId and no provisionerId/workerType is a 400', async () => {
  const def = taskDef('x/y');
  delete def.taskQueueId;
  const result = await outcome(tq.queue.createTask(slugid(), def));
  assert.equal(result.statusCode, 400);
});

test('task groups: one schedulerId per group; listTaskGroup pages through members', async () => {
  const taskQueueId = newTaskQueueId();
  const taskGroupId = slugid();
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) {
    const taskId = slugid();
    ids.push(taskId);
    await tq.queue.createTask(taskId, taskDef(taskQueueId, { taskGroupId, schedulerId: 'sched-a' }));
  }
  const other = await outcome(tq.queue.createTask(slugid(), taskDef(taskQueueId, { taskGroupId, schedulerId: 'sched-b' })));
  assert.equal(other.statusCode, 409);
  assert.match(other.message, /schedulerId/);

  const group = await tq.queue.getTaskGroup(taskGroupId);
  assertSchema('task-group-response', group);
  assert.equal(group.schedulerId, 'sched-a');
  // As the real queue's ensure_task_group: the group outlives its first task by an hour.
  assert.equal(Date.parse(group.expires), Date.parse((await tq.queue.task(ids[0]!)).expires) + 3_600_000);

  const seen: string[] = [];
  let continuationToken: string | undefined;
  let pages = 0;
  do {
    const page = await tq.queue.listTaskGroup(taskGroupId, { limit: 2, ...(continuationToken ? { continuationToken } : {}) });
    assertSchema('list-task-group-response', page);
    assert.ok(page.tasks.length <= 2);
    seen.push(...page.tasks.map((t: any) => t.status.taskId));
    continuationToken = page.continuationToken;
    pages++;
  } while (continuationToken && pages < 10);
  assert.deepEqual(seen.sort(), [...ids].sort());
  assert.ok(pages >= 3);
  assert.equal((await outcome(tq.queue.listTaskGroup(slugid()))).statusCode, 404);
});

test('a sealed task group accepts no new tasks; cancelTaskGroup cancels what is unresolved', async () => {
  const taskQueueId = newTaskQueueId();
  const taskGroupId = slugid();
  const a = slugid();
  const b = slugid();
  await tq.queue.createTask(a, taskDef(taskQueueId, { taskGroupId }));
  await tq.queue.createTask(b, taskDef(taskQueueId, { taskGroupId }));
  const sealed = await tq.queue.sealTaskGroup(taskGroupId);
  assertSchema('task-group-response', sealed);
  assert.ok(sealed.sealed);
  assert.equal((await outcome(tq.queue.createTask(slugid(), taskDef(taskQueueId, { taskGroupId })))).statusCode, 409);

  const cancelled = await tq.queue.cancelTaskGroup(taskGroupId);
  assertSchema('cancel-task-group-response', cancelled);
  assert.equal(cancelled.taskGroupSize, 2);
  assert.deepEqual([...cancelled.taskIds].sort(), [a, b].sort());
  assert.equal((await tq.queue.status(a)).status.runs[0].reasonResolved, 'canceled');
});

test('tasks and statuses return what exists among many taskIds', async () => {
  const taskQueueId = newTaskQueueId();
  const taskId = slugid();
  await tq.queue.createTask(taskId, taskDef(taskQueueId));
  const tasks = await tq.queue.tasks({ taskIds: [taskId, slugid()] });
  assertSchema('tasks-response', tasks);
  assert.deepEqual(tasks.tasks.map((t: any) => t.taskId), [taskId]);
  const statuses = await tq.queue.statuses({ taskIds: [taskId] });
  assertSchema('tasks-statuses-response', statuses);
  assert.equal(statuses.statuses[0].status.state, 'pending');
});
