// Docker engine faults, on a private engine (test/support/private-engine.ts) so that stopping
// and restarting it touches no other test or session: the engine restarted while a task runs,
// the engine's socket unavailable when the worker starts, the engine gone while a claim is under
// way, and the engine hung (frozen) for a while under a running task. For each: the claimed run is
// resolved exactly once, by the worker, with a task log line saying what happened; nothing is
// left behind (containers, journal entries, temporary files); and the worker, still up, claims
// and runs the next task on the engine once it answers again. Part of the fault table
// (`make test-faults`).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkerHarness } from '../support/worker.ts';
import { TASKENV_PASS } from '../support/docker.ts';
import { PrivateEngine } from '../support/private-engine.ts';
import { startWorkerBehind } from '../worker/test-proxy.ts';
import { TestProxy } from '../support/fault-proxy.ts';

const skip = PrivateEngine.unavailable();
let engine: PrivateEngine;
const rows: string[] = [];

before(async () => { if (!skip) engine = await PrivateEngine.create([TASKENV_PASS]); });
after(async () => {
  await engine?.remove();
  console.log(['', '| call | fault | outcome | runs | resolved by the worker | left behind |', '|---|---|---|---|---|---|', ...rows, ''].join('\n'));
});

/** What the run left (containers, networks, volumes, journal entries, temporary files), once the worker has shut down (a finished log is served for a while before). */
async function leftovers(h: WorkerHarness): Promise<string[]> {
  await h.worker?.shutdown('scenario over');
  h.worker = undefined;
  return [
    ...(await engine.engine().listOwnedContainers(h.config.workerId)).map((c) => `container ${c.id.slice(0, 12)}`),
    ...(await engine.engine().listOwnedNetworks(h.config.workerId)).map((n) => `network ${n.name}`),
    ...(await engine.engine().listOwnedVolumes(h.config.workerId)).map((v) => `volume ${v.name}`),
    ...readdirSync(path.join(h.stateDir, 'runs')).map((f) => `journal ${f}`),
    ...readdirSync(path.join(h.stateDir, 'tmp')).map((f) => `tmp ${f}`),
  ];
}

const describeRuns = (runs: { state: string; reasonResolved?: string }[]) => runs.map((r) => `${r.state}${r.reasonResolved && r.reasonResolved !== r.state ? `/${r.reasonResolved}` : ''}`).join(', ');

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!await check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

test('the engine restarted while a task runs: the run is resolved worker-shutdown once, with a line saying so; the rerun runs on the restarted engine', { skip }, async () => {
  await engine.start();
  const h = await WorkerHarness.start({ config: { 'docker.socketPath': engine.socketPath } });
  try {
    const taskId = await h.submit({ image: TASKENV_PASS, command: ['/bin/sh', '-c', 'echo started; sleep 15; echo finished'], maxRunTime: 120 });
    await until('the container to run', async () => (await engine.engine().listOwnedContainers(h.config.workerId)).some((c) => c.state === 'running'));
    await engine.stop();
    await engine.start();
    const run0 = await h.waitForRun(taskId, 0, 120_000);
    // The queue reruns a worker-shutdown run: the same worker claims it and runs it on the restarted engine.
    const status = await h.waitForResolution(taskId, 120_000);
    const resolvedByWorker = h.events('task resolved', taskId).map((e) => String(e.taskState));
    const log0 = await h.taskLog(taskId, 0);
    const left = await leftovers(h);
    rows.push(`| Docker engine | stopped (SIGTERM) and started again while the task runs | ${describeRuns(status.runs)} | ${status.runs.length} | ${resolvedByWorker.join(', ') || 'no'} | ${left.join(', ') || 'nothing'} |`);
    assert.equal(`${run0.state}/${run0.reasonResolved}`, 'exception/worker-shutdown', log0);
    assert.match(log0, /The Docker engine stopped the task's container before the task ended: the engine was stopped or restarted/);
    assert.doesNotMatch(log0, /^finished\r?$/m);
    // A rerun claimed in the moment the engine was going down (its API answers for a second
    // after the containers stopped) meets no engine: it too is resolved worker-shutdown, saying so.
    const outcomes = status.runs.map((r) => `${r.state}${r.reasonResolved !== r.state ? `/${r.reasonResolved}` : ''}`);
    assert.equal(outcomes.at(-1), 'completed', await h.taskLog(taskId, status.runs.length - 1));
    assert.ok(outcomes.slice(0, -1).every((o) => o === 'exception/worker-shutdown'), outcomes.join(', '));
    for (let runId = 1; runId < status.runs.length - 1; runId++) assert.match(await h.taskLog(taskId, runId), /The Docker engine did not answer/);
    assert.match(await h.taskLog(taskId, status.runs.length - 1), /^finished\r?$/m);
    assert.deepEqual(resolvedByWorker, outcomes, 'each run resolved once, by the worker');
    assert.deepEqual(left, []);
  } finally {
    await h.stop();
  }
});

test('the engine\'s socket unavailable at start: the worker starts, says why it does not claim, and claims once the engine answers', { skip }, async () => {
  await engine.stop();
  const h = await WorkerHarness.start({ config: { 'docker.socketPath': engine.socketPath } });
  try {
    const taskId = await h.submit({ image: TASKENV_PASS, command: ['/bin/sh', '-c', 'echo finished'], maxRunTime: 60 });
    await until('the worker to say why it does not claim', () => h.events('not claiming').length > 0, 30_000);
    const reason = String(h.events('not claiming')[0]!.reason);
    assert.match(reason, /Docker engine/);
    assert.match(reason, new RegExp(engine.socketPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    await sleep(2000);
    assert.equal((await h.queue.status(taskId)).status.state, 'pending', 'nothing is claimed while the engine is away');
    await engine.start();
    const status = await h.waitForResolution(taskId, 120_000);
    const resolvedByWorker = h.events('task resolved', taskId).map((e) => String(e.taskState));
    const left = await leftovers(h);
    rows.push(`| Docker engine | socket missing at start, engine started ~2 s later | ${describeRuns(status.runs)} | ${status.runs.length} | ${resolvedByWorker.join(', ') || 'no'} | ${left.join(', ') || 'nothing'} |`);
    assert.deepEqual(status.runs.map((r) => r.state), ['completed']);
    assert.match(await h.taskLog(taskId), /^finished\r?$/m);
    assert.ok(h.events('claiming again').length > 0);
    assert.deepEqual(resolvedByWorker, ['completed']);
    assert.deepEqual(left, []);
  } finally {
    await h.stop();
  }
});

test('a task claimed while the engine is away (the long poll was under way when it stopped): resolved worker-shutdown once, saying so; rerun once the engine is back', { skip }, async () => {
  await engine.start();
  const h = await WorkerHarness.start({ noWorker: true, config: { 'docker.socketPath': engine.socketPath } });
  const proxy = await TestProxy.start(h.rootUrl);
  try {
    // The worker's claimWork is held at the proxy (the engine answered the gate before it) while the engine stops.
    const held = proxy.hold('POST', /\/api\/queue\/v1\/claim-work\//);
    await startWorkerBehind(h, proxy);
    await held.arrived;
    const taskId = await h.submit({ image: TASKENV_PASS, command: ['/bin/sh', '-c', 'echo finished'], maxRunTime: 60 });
    await engine.stop();
    held.release();
    const run0 = await h.waitForRun(taskId, 0, 60_000);
    const log0 = await h.taskLog(taskId, 0);
    assert.equal(`${run0.state}/${run0.reasonResolved}`, 'exception/worker-shutdown', log0);
    assert.match(log0, /The Docker engine did not answer while the worker prepared or ran the task \(Docker engine not reachable at /);
    await until('the worker to say why it does not claim', () => h.events('not claiming').some((e) => /Docker engine/.test(String(e.reason))), 30_000);
    await engine.start();
    const status = await h.waitForResolution(taskId, 120_000);
    const resolvedByWorker = h.events('task resolved', taskId).map((e) => String(e.taskState));
    const left = await leftovers(h);
    rows.push(`| Docker engine | stopped while a claimWork was under way; started again | ${describeRuns(status.runs)} | ${status.runs.length} | ${resolvedByWorker.join(', ') || 'no'} | ${left.join(', ') || 'nothing'} |`);
    assert.deepEqual(describeRuns(status.runs), 'exception/worker-shutdown, completed');
    assert.match(await h.taskLog(taskId, 1), /^finished\r?$/m);
    assert.deepEqual(resolvedByWorker, ['exception/worker-shutdown', 'completed']);
    assert.deepEqual(left, []);
  } finally {
    await h.stop();
    await proxy.close();
  }
});

test('the engine hung (frozen: its socket takes connections, nothing answers) for 20 s while a task runs: the run waits and completes once it answers, resolved once', { skip }, async () => {
  await engine.start();
  const h = await WorkerHarness.start({ config: { 'docker.socketPath': engine.socketPath } });
  try {
    const taskId = await h.submit({ image: TASKENV_PASS, command: ['/bin/sh', '-c', 'echo started; sleep 3; echo finished'], maxRunTime: 120 });
    await until('the container to run', async () => (await engine.engine().listOwnedContainers(h.config.workerId)).some((c) => c.state === 'running'));
    engine.freeze();
    try {
      await sleep(20_000);
      // The container exited meanwhile (containerd runs on), but nobody could say so.
      assert.equal((await h.queue.status(taskId)).status.state, 'running', 'nothing is resolved while the engine hangs');
    } finally {
      engine.thaw();
    }
    const status = await h.waitForResolution(taskId, 60_000);
    const resolvedByWorker = h.events('task resolved', taskId).map((e) => String(e.taskState));
    const log = await h.taskLog(taskId);
    const left = await leftovers(h);
    rows.push(`| Docker engine | hung (SIGSTOP) for 20 s while the task runs | ${describeRuns(status.runs)} | ${status.runs.length} | ${resolvedByWorker.join(', ') || 'no'} | ${left.join(', ') || 'nothing'} |`);
    assert.deepEqual(describeRuns(status.runs), 'completed', log);
    assert.match(log, /^finished\r?$/m);
    assert.deepEqual(resolvedByWorker, ['completed']);
    assert.deepEqual(left, []);
  } finally {
    await h.stop();
  }
});

test('the engine hung for good, then the worker is shut down: the run is resolved worker-shutdown once, saying the engine did not confirm the kill; the container goes at the next start', { skip }, async () => {
  await engine.start();
  const h = await WorkerHarness.start({ config: { 'docker.socketPath': engine.socketPath } });
  try {
    const taskId = await h.submit({ image: TASKENV_PASS, command: ['/bin/sh', '-c', 'echo started; sleep 300'], maxRunTime: 600 });
    await until('the container to run', async () => (await engine.engine().listOwnedContainers(h.config.workerId)).some((c) => c.state === 'running'));
    engine.freeze();
    let status;
    let log;
    const began = Date.now();
    try {
      // Killing the container, waiting for it and removing it all go unanswered: the kill is
      // given up on after 30 s, the removal at the cleanup deadline (60 s).
      await h.worker!.shutdown('scenario: engine hung');
      h.worker = undefined;
      status = (await h.queue.status(taskId)).status;
      log = await h.taskLog(taskId);
    } finally {
      engine.thaw();
    }
    const seconds = Math.round((Date.now() - began) / 1000);
    const resolvedByWorker = h.events('task resolved', taskId).map((e) => String(e.taskState));
    // The queue made a rerun; the test cancels it, so that the next start on the same state
    // directory only sweeps what the engine could not remove.
    await h.queue.cancelTask(taskId);
    await h.startWorker();
    const left = await leftovers(h);
    rows.push(`| Docker engine | hung for good (SIGSTOP) under a running task, worker shut down (${seconds} s) | ${describeRuns(status.runs.slice(0, 1))} | 1 | ${resolvedByWorker.join(', ') || 'no'} | ${left.join(', ') || 'nothing'} (after the next start) |`);
    assert.equal(describeRuns(status.runs), 'exception/worker-shutdown, pending', log);
    assert.match(log, /The Docker engine did not confirm within 30 seconds that the container stopped after the worker killed it/);
    assert.deepEqual(resolvedByWorker, ['exception/worker-shutdown']);
    assert.deepEqual(left, []);
  } finally {
    engine.thaw();
    await h.stop();
  }
});
