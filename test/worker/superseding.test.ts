// Superseding (payload.supersederUrl) end to end, with a superseder served by this test on
// loopback: docker-worker's six cases (no URL, empty list, ordered claims, primary absent,
// timeout, a failed secondary claim) plus shutdown and cancel of the primary. The tasks the
// superseder lists beside the claimed one wait in a side queue no worker polls, so only
// superseding (claimTask) can take them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import taskcluster from 'taskcluster-client';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WorkerHarness } from '../support/worker.ts';
import { TASKENV_PASS } from '../support/docker.ts';

type Answer = { list: string[] } | { delayMs: number; list: string[] };
const answers = new Map<string, Answer>();
const asked: string[] = [];
let superseder: http.Server;
let supersederUrl: string;

before(async () => {
  superseder = http.createServer((req, res) => {
    const taskId = new URL(req.url!, 'http://x').searchParams.get('taskId') ?? '';
    asked.push(taskId);
    const answer = answers.get(taskId) ?? { list: [] };
    const send = () => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(JSON.stringify({ supersedes: answer.list })); };
    if ('delayMs' in answer) { const t = setTimeout(send, answer.delayMs); res.on('close', () => clearTimeout(t)); } else send();
  });
  await new Promise<void>((r) => superseder.listen(0, '127.0.0.1', r));
  supersederUrl = `http://127.0.0.1:${(superseder.address() as AddressInfo).port}/coalesce/linux64`;
});
after(() => { superseder.closeAllConnections(); superseder.close(); });

// Which task ran is read from an artifact it writes (an artifact, not the log: the assertion
// should not hang on how container output reaches the log).
const payload = (name: string, script = 'true') => ({
  image: TASKENV_PASS, command: ['/bin/sh', '-c', `echo "I am ${name}" > /who.txt; ${script}`], maxRunTime: 120, supersederUrl,
  artifacts: { 'public/who.txt': { type: 'file', path: '/who.txt' } },
});

async function ranAs(h: WorkerHarness, taskId: string, runId = 0): Promise<string> {
  const a = await h.artifact(taskId, runId, 'public/who.txt');
  return a.status === 200 ? a.text.trim() : `no public/who.txt (${a.status})`;
}

/** Creates a task with a taskId chosen beforehand (the superseder must know it before the claim). */
async function create(h: WorkerHarness, taskId: string, p: Record<string, unknown>, side = false): Promise<string> {
  await h.queue.createTask(taskId, {
    taskQueueId: side ? `${h.taskQueueId}-side` : h.taskQueueId,
    created: new Date().toISOString(), deadline: taskcluster.fromNow('1 hour').toISOString(),
    metadata: { name: 'superseding test', description: 'superseding', owner: 'test@localhost.localdomain', source: 'https://localhost/test' },
    payload: p,
  });
  return taskId;
}

async function json(h: WorkerHarness, taskId: string, name: string): Promise<unknown> {
  const a = await h.artifact(taskId, 0, name);
  assert.equal(a.status, 200, `${name} of ${taskId}: ${a.text}`);
  return JSON.parse(a.text);
}

/**
 * The reason a superseded run ends with: the queue's reportException no longer takes
 * `superseded` (the v106 reference; the embedded queue follows it), so the worker falls back to
 * resource-unavailable (lib/queue/superseder.ts).
 */
const SUPERSEDED = 'resource-unavailable';

let h: WorkerHarness;
before(async () => { h = await WorkerHarness.start(); });
after(async () => { await h?.stop(); });

test('no supersederUrl: the task runs as always, nothing asked, no supersedes.json', async () => {
  const taskId = await h.submit({ image: TASKENV_PASS, command: ['true'], maxRunTime: 60 });
  assert.equal((await h.waitForResolution(taskId)).state, 'completed');
  assert.ok(!asked.includes(taskId));
  assert.ok(!(await h.listArtifacts(taskId)).some((a) => a.name === 'public/supersedes.json'));
});

test('an empty list: the claimed task runs alone (a line says so), no supersedes.json', async () => {
  const a = taskcluster.slugid();
  answers.set(a, { list: [] });
  await create(h, a, payload('A'));
  assert.equal((await h.waitForResolution(a)).state, 'completed');
  assert.deepEqual(asked.filter((t) => t === a), [a]);
  const log = await h.taskLog(a);
  assert.equal(await ranAs(h, a), 'I am A');
  assert.match(log, /Superseding: the superseder lists no tasks; this task runs alone\./);
  assert.ok(!(await h.listArtifacts(a)).some((x) => x.name === 'public/supersedes.json'));
});

test('ordered claims: the last task in the list runs in the claimed one\'s place; the others are reclaimed meanwhile, then resolved superseded with superseded-by.json; the primary gets supersedes.json', async () => {
  // Short claims (the embedded queue's; a real one has its own): the secondaries must be reclaimed.
  const h = await WorkerHarness.start({ claimTimeoutSeconds: 4, config: { 'task.reclaimMarginSeconds': 2 } });
  try {
    const [a, b, c] = [taskcluster.slugid(), taskcluster.slugid(), taskcluster.slugid()];
    // The primary outlives a claim: the secondaries are only still held if they were reclaimed.
    const longer = h.deployment.claimTimeoutSeconds + 2;
    await create(h, b, payload('B'), true);
    await create(h, c, payload('C', `sleep ${longer}`), true);
    answers.set(a, { list: [b, a, c] });
    await create(h, a, payload('A'));
    const primary = await h.waitForResolution(c, 120_000);
    assert.equal(primary.state, 'completed');
    assert.equal(primary.runs[0]!.workerId, h.config.workerId);
    const log = await h.taskLog(c);
    assert.equal(await ranAs(h, c), 'I am C');
    assert.match(log, new RegExp(`Superseding: this worker claimed task ${a}; the superseder lists this task after it, so this task runs in its place\\.`));
    assert.match(log, new RegExp(`Superseding: this task supersedes ${b}, ${a}; once it is reported they are resolved superseded, each with public/superseded-by\\.json naming this task\\.`));
    for (const secondary of [a, b]) {
      const run = await h.waitForRun(secondary, 0);
      assert.equal(run.state, 'exception', secondary);
      assert.equal(run.reasonResolved, SUPERSEDED, `${secondary} was still claimed when the primary finished`);
      assert.deepEqual(await json(h, secondary, 'public/superseded-by.json'), { taskId: c, runId: 0 });
      assert.ok(!(await h.listArtifacts(secondary)).some((x) => x.name === 'public/logs/live.log'), 'a superseded task did not run');
    }
    assert.deepEqual(await json(h, c, 'public/supersedes.json'), [{ taskId: b, runId: 0 }, { taskId: a, runId: 0 }]);
    assert.ok(h.events('reclaimed task', a).length >= 1, 'the claimed task was reclaimed while the primary ran');
  } finally {
    await h.stop();
  }
});

test('the claimed task absent from the list: it runs alone with a warning; the listed tasks are not claimed', async () => {
  const [a, b, c] = [taskcluster.slugid(), taskcluster.slugid(), taskcluster.slugid()];
  await create(h, b, payload('B'), true);
  await create(h, c, payload('C'), true);
  answers.set(a, { list: [b, c] });
  await create(h, a, payload('A'));
  assert.equal((await h.waitForResolution(a)).state, 'completed');
  const log = await h.taskLog(a);
  assert.equal(await ranAs(h, a), 'I am A');
  assert.match(log, new RegExp(`Superseding: the superseder's list \\(${b}, ${c}\\) does not include this task; this task runs alone\\.`));
  for (const t of [b, c]) assert.equal((await h.queue.status(t)).status.state, 'pending', `${t} left alone`);
});

test('a superseder slower than 5 s: the claimed task runs alone with a warning', async () => {
  const [a, b] = [taskcluster.slugid(), taskcluster.slugid()];
  await create(h, b, payload('B'), true);
  answers.set(a, { delayMs: 8000, list: [a, b] });
  await create(h, a, payload('A'));
  assert.equal((await h.waitForResolution(a)).state, 'completed');
  const log = await h.taskLog(a);
  assert.equal(await ranAs(h, a), 'I am A');
  assert.match(log, /Superseding: the superseder at \S+ could not be used: no answer within 5 s; this task runs alone\./);
  assert.equal((await h.queue.status(b)).status.state, 'pending');
});

test('a secondary claim that fails is dropped: the latest task claimed is the primary', async () => {
  const [a, b, c] = [taskcluster.slugid(), taskcluster.slugid(), taskcluster.slugid()];
  await create(h, b, payload('B'), true);
  await create(h, c, payload('C'), true);
  await h.queue.cancelTask(c); // claimTask on it now fails
  answers.set(a, { list: [a, b, c] });
  await create(h, a, payload('A'));
  assert.equal((await h.waitForResolution(b)).state, 'completed');
  const log = await h.taskLog(b);
  assert.equal(await ranAs(h, b), 'I am B');
  assert.match(log, new RegExp(`Superseding: task ${c} could not be claimed \\(.*\\); it is left alone\\.`));
  const run = await h.waitForRun(a, 0);
  assert.equal(run.reasonResolved, SUPERSEDED);
  assert.deepEqual(await json(h, a, 'public/superseded-by.json'), { taskId: b, runId: 0 });
  assert.deepEqual(await json(h, b, 'public/supersedes.json'), [{ taskId: a, runId: 0 }]);
  const cancelled = (await h.queue.status(c)).status;
  assert.equal(cancelled.runs.length, 1);
  assert.equal(cancelled.runs[0]!.reasonResolved, 'canceled', 'the failed claim changed nothing');
});

test('a secondary cancelled while the primary runs stays cancelled and is left out of supersedes.json', async () => {
  const [a, b, c] = [taskcluster.slugid(), taskcluster.slugid(), taskcluster.slugid()];
  await create(h, b, payload('B'), true);
  await create(h, c, payload('C', 'sleep 4'), true);
  answers.set(a, { list: [a, b, c] });
  await create(h, a, payload('A'));
  await h.waitForRunning(c);
  await h.queue.cancelTask(b);
  assert.equal((await h.waitForResolution(c)).state, 'completed');
  assert.equal((await h.waitForRun(a, 0)).reasonResolved, SUPERSEDED);
  const cancelled = (await h.queue.status(b)).status;
  assert.equal(cancelled.runs.length, 1);
  assert.equal(cancelled.runs[0]!.reasonResolved, 'canceled');
  assert.deepEqual(await json(h, c, 'public/supersedes.json'), [{ taskId: a, runId: 0 }]);
  assert.equal((await h.artifact(b, 0, 'public/superseded-by.json')).status, 404, 'the cancelled task was not superseded');
});

test('cancel of the primary: its secondaries are handed back (worker-shutdown), never left claimed', async () => {
  const [a, b] = [taskcluster.slugid(), taskcluster.slugid()];
  await create(h, b, payload('B', 'sleep 60'), true);
  answers.set(a, { list: [a, b] });
  await create(h, a, payload('A'));
  await h.waitForRunning(b);
  await h.queue.cancelTask(b);
  const run = await h.waitForRun(a, 0, 30_000);
  assert.equal(run.state, 'exception');
  assert.equal(run.reasonResolved, 'worker-shutdown');
  // The queue reruns it; the superseder still lists the cancelled task, which cannot be claimed: A runs itself.
  const again = await h.waitForResolution(a);
  assert.equal(again.state, 'completed');
  assert.equal(again.runs.length, 2);
  assert.equal(await ranAs(h, a, 1), 'I am A');
});

test('shutdown while a primary runs: it and its secondaries are resolved worker-shutdown', async () => {
  const s = await WorkerHarness.start();
  try {
    const [a, b] = [taskcluster.slugid(), taskcluster.slugid()];
    await create(s, b, payload('B', 'sleep 60'), true);
    answers.set(a, { list: [a, b] });
    await create(s, a, payload('A'));
    await s.waitForRunning(b);
    await s.worker!.shutdown('test');
    for (const t of [a, b]) {
      const run = await s.waitForRun(t, 0, 10_000);
      assert.equal(run.state, 'exception', t);
      assert.equal(run.reasonResolved, 'worker-shutdown', t);
    }
    assert.match(await s.taskLog(b), /Reason: worker-shutdown/);
  } finally {
    await s.stop();
  }
});

test('a worker killed while a primary runs: restarted, it resolves the primary and the task it superseded worker-shutdown at once', async () => {
  const k = await WorkerHarness.start({ noWorker: true });
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'supersede-crash-'));
  const env = {
    PATH: process.env.PATH, HOME: process.env.HOME, WORKER_STATE_DIR: stateDir, WORKER_ID: `${k.config.workerId}-crash`,
    WORKER_PROVISIONER_ID: k.config.provisionerId, WORKER_TYPE: k.config.workerType,
    TASKCLUSTER_ROOT_URL: k.rootUrl, TASKCLUSTER_CLIENT_ID: k.credentials.clientId, TASKCLUSTER_ACCESS_TOKEN: k.credentials.accessToken,
  };
  const start = () => spawn(path.resolve(import.meta.dirname, '../../bin/worker'), ['start'], { env, stdio: 'ignore' });
  let child = start();
  try {
    const [a, b] = [taskcluster.slugid(), taskcluster.slugid()];
    await create(k, b, payload('B', 'sleep 120'), true);
    answers.set(a, { list: [a, b] });
    await create(k, a, payload('A'));
    await k.waitForRunning(b);
    await k.waitForRunning(a);
    const runs = path.join(stateDir, 'runs');
    for (let i = 0; readdirSync(runs).filter((f) => f.endsWith('.json')).length < 2; i++) {
      assert.ok(i < 100, 'both runs journalled');
      await new Promise((r) => setTimeout(r, 100));
    }
    child.kill('SIGKILL');
    await once(child, 'exit');
    child = start();
    for (const t of [a, b]) {
      const run = await k.waitForRun(t, 0, 30_000);
      assert.equal(run.reasonResolved, 'worker-shutdown', `${t} resolved by the restarted worker, not left to claim expiry`);
    }
  } finally {
    child.kill('SIGTERM');
    await once(child, 'exit').catch(() => undefined);
    await k.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }
});
