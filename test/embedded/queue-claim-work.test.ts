// claimWork as workers see it: long-polling, waking when work arrives, many concurrent
// callers, priority order, claim credentials, and what happens when a caller goes away.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import Hawk from '@hapi/hawk';
import taskcluster from 'taskcluster-client';
import { startQueue, newTaskQueueId, slugid, taskDef, outcome, assertSchema, claimOne, worker, type TestQueue } from './queue-fixtures.ts';

const WAIT_SECONDS = 1;
let tq: TestQueue;

before(async () => { tq = await startQueue({ claimWorkWaitSeconds: WAIT_SECONDS }); });
after(async () => { await tq.close(); });

test('on an empty queue claimWork waits, then answers no tasks', async () => {
  const started = Date.now();
  const result = await tq.queue.claimWork(newTaskQueueId(), worker());
  assertSchema('claim-work-response', result);
  assert.deepEqual(result.tasks, []);
  assert.ok(Date.now() - started >= WAIT_SECONDS * 1000 - 100, 'claimWork is a long-poll: it waits before answering empty');
});

test('a waiting claimWork is handed a task created while it waits, before its wait ends', async () => {
  const slow = await startQueue({ claimWorkWaitSeconds: 15 });
  try {
    const taskQueueId = newTaskQueueId();
    const taskId = slugid();
    const started = Date.now();
    const claiming = slow.queue.claimWork(taskQueueId, worker());
    await new Promise((r) => setTimeout(r, 300));
    await slow.queue.createTask(taskId, taskDef(taskQueueId));
    const result = await claiming;
    assert.deepEqual(result.tasks.map((t: any) => t.status.taskId), [taskId]);
    assert.ok(Date.now() - started < 15_000, 'claimWork returned before its wait would have ended');
  } finally {
    await slow.close();
  }
});

test('claimWork hands out at most the requested number of tasks', async () => {
  const taskQueueId = newTaskQueueId();
  for (let i = 0; i < 3; i++) await tq.queue.createTask(slugid(), taskDef(taskQueueId));
  const first = await tq.queue.claimWork(taskQueueId, { ...worker(), tasks: 2 });
  assert.equal(first.tasks.length, 2);
  const second = await tq.queue.claimWork(taskQueueId, { ...worker(), tasks: 5 });
  assert.equal(second.tasks.length, 1);
});

test('higher priority is claimed first, then oldest first', async () => {
  const taskQueueId = newTaskQueueId();
  const order: [string, string][] = [['a', 'low'], ['b', 'highest'], ['c', 'low'], ['d', 'medium']];
  const ids = new Map<string, string>();
  for (const [name, priority] of order) {
    const taskId = slugid();
    ids.set(taskId, name);
    await tq.queue.createTask(taskId, taskDef(taskQueueId, { priority }));
    await new Promise((r) => setTimeout(r, 5));
  }
  const claimed: string[] = [];
  for (let i = 0; i < 4; i++) claimed.push(ids.get((await claimOne(tq.queue, taskQueueId)).status.taskId)!);
  assert.deepEqual(claimed, ['b', 'd', 'a', 'c']);
});

test('8 concurrent claimWork callers never get the same run: every task is claimed exactly once', async () => {
  const taskQueueId = newTaskQueueId();
  const total = 40;
  const claimed: string[] = [];
  let created = 0;
  const callers = Array.from({ length: 8 }, async (_, i) => {
    while (claimed.length < total) {
      const result = await tq.queue.claimWork(taskQueueId, { workerGroup: 'wg', workerId: `w${i}`, tasks: 1 + (i % 3) });
      for (const claim of result.tasks) claimed.push(`${claim.status.taskId}/${claim.runId}`);
      if (result.tasks.length === 0 && created === total) break;
    }
  });
  const taskIds: string[] = [];
  await Promise.all(Array.from({ length: total }, async () => {
    const taskId = slugid();
    taskIds.push(taskId);
    await tq.queue.createTask(taskId, taskDef(taskQueueId));
    created++;
  }));
  await Promise.all(callers);
  assert.equal(claimed.length, total, 'no task was claimed twice or left behind');
  assert.deepEqual([...claimed].sort(), taskIds.map((t) => `${t}/0`).sort());
  const counts = await tq.queue.taskQueueCounts(taskQueueId);
  assertSchema('task-queue-counts-response', counts);
  assert.deepEqual([counts.pendingTasks, counts.claimedTasks], [0, total]);
});

test('claim credentials reclaim and resolve their run but cannot claim work', async () => {
  const taskQueueId = newTaskQueueId();
  const taskId = slugid();
  await tq.queue.createTask(taskId, taskDef(taskQueueId));
  const claim = await claimOne(tq.queue, taskQueueId);
  const asTask = tq.client(claim.credentials);
  const denied = await outcome(asTask.claimWork(taskQueueId, worker()));
  assert.equal(denied.statusCode, 403);
  assert.match(denied.message, /queue:claim-work:/);
  assert.equal((await outcome(asTask.createTask(slugid(), taskDef(taskQueueId)))).statusCode, 403);
  assert.equal((await asTask.reclaimTask(taskId, 0)).runId, 0);
  assert.equal((await asTask.reportCompleted(taskId, 0)).status.state, 'completed');
});

test('claim credentials are named like the real queue\'s and carry the run\'s scopes plus the task\'s', async () => {
  const taskQueueId = newTaskQueueId();
  const taskId = slugid();
  await tq.queue.createTask(taskId, taskDef(taskQueueId, { scopes: ['auth:current-scopes', 'secrets:get:x'] }));
  const claim = await claimOne(tq.queue, taskQueueId, 'named-worker');
  const until = (takenUntil: string) => `${Date.parse(takenUntil) / 1000}`;
  assert.equal(claim.credentials.clientId, `task-client/${taskId}/0/on/wg/named-worker/until/${until(claim.takenUntil)}`);

  const auth = new taskcluster.Auth({ rootUrl: tq.deployment.rootUrl, credentials: claim.credentials, retries: 0 });
  const { scopes } = await auth.currentScopes();
  assert.deepEqual(scopes, [
    'auth:current-scopes', `queue:create-artifact:${taskId}/0`, `queue:reclaim-task:${taskId}/0`, `queue:resolve-task:${taskId}/0`, 'secrets:get:x',
  ]);
  // The service sees the named clientId (authenticateHawk reports who signed a request).
  const resource = '/some/resource';
  const { header } = Hawk.client.header(`http://service.example:80${resource}`, 'GET', {
    credentials: { id: claim.credentials.clientId, key: claim.credentials.accessToken, algorithm: 'sha256' },
    ext: Buffer.from(JSON.stringify({ certificate: JSON.parse(claim.credentials.certificate) })).toString('base64'),
  });
  const root = new taskcluster.Auth({ rootUrl: tq.deployment.rootUrl, credentials: tq.deployment.credentials, retries: 0 });
  const who = await root.authenticateHawk({ method: 'get', resource, host: 'service.example', port: 80, authorization: header });
  assert.equal(who.status, 'auth-success');
  assert.equal(who.clientId, claim.credentials.clientId);
  // A 403 names the claim's client.
  const denied = await outcome(tq.client(claim.credentials).cancelTask(taskId));
  assert.equal(denied.statusCode, 403);
  assert.ok(denied.message.includes(claim.credentials.clientId), denied.message);

  // reclaimTask issues fresh credentials named for the new takenUntil.
  await new Promise((r) => setTimeout(r, 5));
  const reclaim = await tq.client(claim.credentials).reclaimTask(taskId, 0);
  assert.equal(reclaim.credentials.clientId, `task-client/${taskId}/0/on/wg/named-worker/until/${until(reclaim.takenUntil)}`);
  assert.notEqual(reclaim.credentials.clientId, claim.credentials.clientId);
  assert.equal((await tq.client(reclaim.credentials).reportCompleted(taskId, 0)).status.state, 'completed');
});

test('claimWork needs queue:claim-work and queue:worker-id scopes', async () => {
  const taskQueueId = newTaskQueueId();
  const limited = tq.client(tq.deployment.credentials, { authorizedScopes: [`queue:claim-work:${taskQueueId}`] });
  const denied = await outcome(limited.claimWork(taskQueueId, worker()));
  assert.equal(denied.statusCode, 403);
  assert.match(denied.message, /queue:worker-id:wg\/w1/);
  const bad = await outcome(tq.queue.claimWork(taskQueueId, { workerGroup: 'wg', workerId: 'w1', tasks: 0 }));
  assert.equal(bad.statusCode, 400);
});

test('the legacy claimTask claims a given pending run; another worker then gets 409', async () => {
  const taskQueueId = newTaskQueueId();
  const taskId = slugid();
  await tq.queue.createTask(taskId, taskDef(taskQueueId));
  const claim = await tq.queue.claimTask(taskId, 0, { workerGroup: 'wg', workerId: 'legacy' });
  assertSchema('task-claim-response', claim);
  assert.equal(claim.status.state, 'running');
  const other = await outcome(tq.queue.claimTask(taskId, 0, { workerGroup: 'wg', workerId: 'other' }));
  assert.equal(other.statusCode, 409);
});

test('concurrent claimTask calls on one run (and a claimWork): exactly one wins, the others get 409 or nothing', async () => {
  const taskQueueId = newTaskQueueId();
  const taskId = slugid();
  await tq.queue.createTask(taskId, taskDef(taskQueueId));
  const claims = Array.from({ length: 6 }, (_, i) => outcome(tq.queue.claimTask(taskId, 0, { workerGroup: 'wg', workerId: `racer-${i}` })));
  const viaClaimWork = tq.queue.claimWork(taskQueueId, { workerGroup: 'wg', workerId: 'racer-cw', tasks: 1 });
  const [results, work] = await Promise.all([Promise.all(claims), viaClaimWork]);
  const wins = results.filter((r) => r.statusCode === 200).length + work.tasks.length;
  assert.equal(wins, 1, `exactly one claim succeeds: ${JSON.stringify(results.map((r) => r.statusCode))}, claimWork ${work.tasks.length}`);
  for (const r of results) if (r.statusCode !== 200) assert.deepEqual([r.statusCode, r.code], [409, 'RequestConflict']);
  const { status } = await tq.queue.status(taskId);
  assert.equal(status.runs.length, 1);
  assert.equal(status.runs[0].state, 'running');
});

test('a claim whose answer would break the schema is not made: 500, and the run stays pending', async () => {
  const taskQueueId = newTaskQueueId();
  const taskId = slugid();
  await tq.queue.createTask(taskId, taskDef(taskQueueId));
  // A stored definition the schema refuses (tag values are strings), as a bug might leave it.
  const db = new DatabaseSync(path.join(tq.stateDir, 'embedded.sqlite'));
  try {
    db.exec('PRAGMA busy_timeout = 5000');
    db.prepare(`UPDATE queue_tasks SET definition = json_set(definition, '$.tags.bad', 42) WHERE task_id = ?`).run(taskId);
  } finally {
    db.close();
  }
  for (const claiming of [
    () => tq.queue.claimWork(taskQueueId, worker('schema-1')),
    () => tq.queue.claimTask(taskId, 0, { workerGroup: 'wg', workerId: 'schema-2' }),
  ]) {
    const failed = await outcome(claiming());
    assert.equal(failed.statusCode, 500);
    assert.equal(failed.code, 'InternalServerError');
    const { status } = await tq.queue.status(taskId);
    assert.deepEqual(status.runs.map((r: any) => r.state), ['pending'], 'no worker holds a claim it was never told about');
  }
});

/** A claimWork request the test can abandon mid-wait (taskcluster-client cannot). */
function abandonableClaimWork(taskQueueId: string, workerId: string): { abort(): void; done: Promise<unknown> } {
  const url = `${tq.deployment.rootUrl}/api/queue/v1/claim-work/${encodeURIComponent(taskQueueId)}`;
  const body = JSON.stringify({ workerGroup: 'wg', workerId, tasks: 1 });
  const { clientId, accessToken } = tq.deployment.credentials;
  const { header } = Hawk.client.header(url, 'POST', {
    credentials: { id: clientId, key: accessToken, algorithm: 'sha256' }, payload: body, contentType: 'application/json',
  });
  const controller = new AbortController();
  const done = fetch(url, {
    method: 'POST', body, signal: controller.signal, headers: { authorization: header, 'content-type': 'application/json' },
  }).then((r) => r.json()).catch(() => undefined);
  return { abort: () => controller.abort(), done };
}

test('a caller that goes away while waiting claims nothing', async () => {
  const slow = await startQueue({ claimWorkWaitSeconds: 10 });
  const previous = tq;
  tq = slow;
  try {
    const taskQueueId = newTaskQueueId();
    const gone = abandonableClaimWork(taskQueueId, 'gone');
    await new Promise((r) => setTimeout(r, 300));
    gone.abort();
    await gone.done;
    await new Promise((r) => setTimeout(r, 200));
    const taskId = slugid();
    await slow.queue.createTask(taskId, taskDef(taskQueueId));
    const claim = await claimOne(slow.queue, taskQueueId, 'present');
    assert.equal(claim.status.taskId, taskId);
    assert.equal(claim.workerId, 'present');
  } finally {
    tq = previous;
    await slow.close();
  }
});

test('closing the deployment answers waiting claimWork calls with no tasks', async () => {
  const slow = await startQueue({ claimWorkWaitSeconds: 15 });
  const started = Date.now();
  const waiting = slow.queue.claimWork(newTaskQueueId(), worker());
  await new Promise((r) => setTimeout(r, 300));
  await slow.close();
  const result = await waiting;
  assert.deepEqual(result.tasks, []);
  assert.ok(Date.now() - started < 15_000, 'answered at close, not at the end of the wait');
});

test('a quarantined worker gets no work; workers and task queues are listed with their activity', async () => {
  const taskQueueId = newTaskQueueId();
  const [provisionerId, workerType] = taskQueueId.split('/');
  const taskId = slugid();
  await tq.queue.createTask(taskId, taskDef(taskQueueId));
  await claimOne(tq.queue, taskQueueId, 'good');
  await tq.queue.claimWork(taskQueueId, worker('bad'));

  const w = await tq.queue.getWorker(provisionerId, workerType, 'wg', 'good');
  assertSchema('worker-response', w);
  assert.deepEqual(w.recentTasks, [{ taskId, runId: 0 }]);
  assert.ok(w.firstClaim && w.lastDateActive);

  const q = await tq.queue.quarantineWorker(provisionerId, workerType, 'wg', 'bad', { quarantineUntil: new Date(Date.now() + 3600_000).toJSON(), quarantineInfo: 'flaky disk' });
  assertSchema('worker-response', q);
  assert.equal(q.quarantineDetails[0].quarantineInfo, 'flaky disk');

  const next = slugid();
  await tq.queue.createTask(next, taskDef(taskQueueId));
  assert.deepEqual((await tq.queue.claimWork(taskQueueId, worker('bad'))).tasks, []);
  assert.equal((await claimOne(tq.queue, taskQueueId, 'good')).status.taskId, next);

  const listed = await tq.queue.listWorkers(provisionerId, workerType);
  assertSchema('list-workers-response', listed);
  assert.deepEqual(listed.workers.map((x: any) => x.workerId).sort(), ['bad', 'good']);
  const quarantined = await tq.queue.listWorkers(provisionerId, workerType, { quarantined: 'true' });
  assert.deepEqual(quarantined.workers.map((x: any) => x.workerId), ['bad']);
  assert.equal((await outcome(tq.queue.getWorker(provisionerId, workerType, 'wg', 'nobody'))).statusCode, 404);

  const taskQueue = await tq.queue.getTaskQueue(taskQueueId);
  assertSchema('taskqueue-response', taskQueue);
  assertSchema('list-taskqueues-response', await tq.queue.listTaskQueues());
  const types = await tq.queue.listWorkerTypes(provisionerId);
  assertSchema('list-workertypes-response', types);
  assert.ok(types.workerTypes.some((t: any) => t.workerType === workerType));
  assertSchema('workertype-response', await tq.queue.getWorkerType(provisionerId, workerType));
  const provisioners = await tq.queue.listProvisioners();
  assertSchema('list-provisioners-response', provisioners);
  assert.ok(provisioners.provisioners.some((p: any) => p.provisionerId === provisionerId));
  assertSchema('provisioner-response', await tq.queue.getProvisioner(provisionerId));
});

test('pending and claimed listings show where each task is', async () => {
  const taskQueueId = newTaskQueueId();
  const a = slugid();
  const b = slugid();
  await tq.queue.createTask(a, taskDef(taskQueueId));
  await tq.queue.createTask(b, taskDef(taskQueueId));
  await claimOne(tq.queue, taskQueueId);
  const pending = await tq.queue.listPendingTasks(taskQueueId);
  assertSchema('list-pending-tasks-response', pending);
  assert.deepEqual(pending.tasks.map((t: any) => t.taskId), [b]);
  const claimed = await tq.queue.listClaimedTasks(taskQueueId);
  assertSchema('list-claimed-tasks-response', claimed);
  assert.deepEqual(claimed.tasks.map((t: any) => t.taskId), [a]);
  const count = await tq.queue.pendingTasks(taskQueueId);
  assertSchema('pending-tasks-response', count);
  assert.equal(count.pendingTasks, 1);
});
