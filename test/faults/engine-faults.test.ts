// Docker engine faults, on a private engine (test/support/private-engine.ts) so that stopping
// and restarting it touches no other test or session: the engine restarted while a task runs,
// the engine's socket unavailable when the worker starts, the engine gone while a claim is under
// way, the engine hung (frozen) for a while under a running task, and hung before the task's
// container starts (docker.callTimeoutSeconds, docker.progressTimeoutSeconds: the run is
// resolved worker-shutdown within the timeout, and what the thawed engine makes late is
// removed). For each: the claimed run is resolved exactly once, by the worker, with a task log line saying what happened; nothing is
// left behind (containers, journal entries, temporary files); and the worker, still up, claims
// and runs the next task on the engine once it answers again. Part of the fault table
// (`make test-faults`).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { Readable } from 'node:stream';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkerHarness } from '../support/worker.ts';
import { TASKENV_PASS } from '../support/docker.ts';
import { PrivateEngine } from '../support/private-engine.ts';
import { startWorkerBehind } from '../worker/test-proxy.ts';
import { TestProxy } from '../support/fault-proxy.ts';
import { Engine } from '../../lib/docker/engine.ts';
import { EngineError } from '../../lib/docker/engine-error.ts';
import { LABEL_WORKER_ID } from '../../lib/docker/labels.ts';

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

/**
 * The engine frozen while a claimWork is under way (held at the proxy: the claim gate's ping
 * was answered before), so that the run's first engine call meets a hung engine. With
 * docker.callTimeoutSeconds at 3, the run is resolved worker-shutdown while the engine is
 * still frozen, saying which call went unanswered; once thawed, what the engine made late is
 * removed and the worker runs the queue's rerun.
 */
async function hungBeforeStart(payload: Record<string, unknown>, expectedCall: RegExp, fault: string): Promise<void> {
  await engine.start();
  const h = await WorkerHarness.start({ noWorker: true, config: { 'docker.socketPath': engine.socketPath, 'docker.callTimeoutSeconds': 3 } });
  const proxy = await TestProxy.start(h.rootUrl);
  try {
    const held = proxy.hold('POST', /\/api\/queue\/v1\/claim-work\//);
    await startWorkerBehind(h, proxy);
    await held.arrived;
    const taskId = await h.submit(payload);
    engine.freeze();
    let run0;
    let log0 = '';
    let frozenSeconds = 0;
    try {
      const frozenAt = Date.now();
      held.release();
      run0 = await h.waitForRun(taskId, 0, 60_000);
      frozenSeconds = (Date.now() - frozenAt) / 1000;
      log0 = await h.taskLog(taskId, 0);
      // Still frozen: the run did not wait for the engine, and the worker was not shut down for it.
      assert.equal(h.events('task resolved', taskId).length, 1, 'resolved by the worker while the engine is still frozen');
      // The slot is free: the worker is back at its claim gate, whose ping the frozen engine leaves unanswered.
      await until('the worker to say why it does not claim', () => h.events('not claiming').some((e) =>
        /did not answer within 3 seconds when asked to answer a ping: it is hung/.test(String(e.reason))), 30_000);
    } finally {
      engine.thaw();
    }
    assert.equal(`${run0.state}/${run0.reasonResolved}`, 'exception/worker-shutdown', log0);
    assert.match(log0, /The Docker engine did not answer while the worker prepared or ran the task \(Docker engine at \S+ did not answer within 3 seconds when asked to /);
    assert.match(log0, expectedCall);
    // The slot is free: the same worker claims the queue's rerun and runs it on the thawed engine.
    const status = await h.waitForResolution(taskId, 120_000);
    const resolvedByWorker = h.events('task resolved', taskId).map((e) => String(e.taskState));
    const left = await leftovers(h);
    rows.push(`| Docker engine | ${fault} (docker.callTimeoutSeconds 3; run 0 resolved ${frozenSeconds.toFixed(1)} s after the freeze) | ${describeRuns(status.runs)} | ${status.runs.length} | ${resolvedByWorker.join(', ') || 'no'} | ${left.join(', ') || 'nothing'} |`);
    assert.equal(describeRuns(status.runs), 'exception/worker-shutdown, completed');
    assert.match(await h.taskLog(taskId, 1), /^finished\r?$/m);
    assert.deepEqual(resolvedByWorker, ['exception/worker-shutdown', 'completed']);
    assert.deepEqual(left, []);
  } finally {
    engine.thaw();
    await h.stop();
    await proxy.close();
  }
}

test('the engine hung before the container is created (its image inspect unanswered): worker-shutdown once within the call timeout, naming the call; rerun once it answers', { skip }, async () => {
  await hungBeforeStart({ image: TASKENV_PASS, command: ['/bin/sh', '-c', 'echo finished'], maxRunTime: 60 },
    /when asked to inspect image /, 'hung (SIGSTOP) before the container is created: image inspect unanswered');
});

test('the engine hung while the run\'s network is created (taskclusterProxy): worker-shutdown once, naming the call; the network the thawed engine makes late is removed', { skip }, async () => {
  await hungBeforeStart({ image: TASKENV_PASS, command: ['/bin/sh', '-c', 'echo finished'], maxRunTime: 60, features: { taskclusterProxy: true } },
    /when asked to create network /, 'hung (SIGSTOP) before the container is created: network create unanswered (taskclusterProxy)');
});

test('a container create the engine answers only after the call timeout: the create fails as a hung engine; the container made late is removed once the engine answers', { skip }, async () => {
  await engine.start();
  const workerId = `late-create-${Date.now()}`;
  const hurried = new Engine({ socketPath: engine.socketPath, timeouts: { callMs: 2000 } });
  const owner = { workerId, taskId: 'late', runId: 0 };
  // The image's inspect (for its volumes) is answered; the engine freezes before the create.
  const inspected = await hurried.inspectImage(TASKENV_PASS);
  assert.ok(inspected, 'the test image is on the private engine');
  const realInspect = hurried.inspectImage.bind(hurried);
  hurried.inspectImage = async (name: string) => { const info = await realInspect(name); engine.freeze(); return info; };
  const began = Date.now();
  let seconds = 0;
  try {
    await assert.rejects(hurried.createContainer({ Image: TASKENV_PASS, Cmd: ['true'] }, owner),
      (err: unknown) => err instanceof EngineError && err.kind === 'unreachable'
        && /did not answer within 2 seconds when asked to create a container from /.test(err.message));
    seconds = (Date.now() - began) / 1000;
  } finally {
    engine.thaw();
  }
  // The engine now creates the container it was asked for; the worker's engine removes it.
  const events = () => execFileSync('docker', ['-H', `unix://${engine.socketPath}`, 'events', '--since', String(Math.floor(began / 1000) - 1),
    '--until', String(Math.ceil(Date.now() / 1000)), '--filter', 'type=container', '--filter', `label=${LABEL_WORKER_ID}=${workerId}`,
    '--format', '{{.Action}}'], { encoding: 'utf8' }).split('\n').filter(Boolean);
  await until('the late container to be created and removed', () => { const seen = events(); return seen.includes('create') && seen.includes('destroy'); }, 60_000);
  const left = (await engine.engine().listOwnedContainers(workerId)).map((c) => `container ${c.id.slice(0, 12)}`);
  rows.push(`| Docker engine | hung (SIGSTOP) during a container create (call timeout 2 s: failed after ${seconds.toFixed(1)} s), thawed | create fails as a hung engine | - | - | ${left.join(', ') || 'nothing'} |`);
  assert.deepEqual(left, []);
});

test('an image load and a pull on a hung engine: each ends once nothing moved for the progress timeout (not at the end of a total)', { skip }, async () => {
  await engine.start();
  const hurried = new Engine({ socketPath: engine.socketPath, timeouts: { progressMs: 2000 } });
  // A real `docker save` archive, read whole first (no engine call under the freeze but the load).
  const chunks: Buffer[] = [];
  for await (const chunk of await engine.engine().saveImage(TASKENV_PASS)) chunks.push(chunk as Buffer);
  const archive = Buffer.concat(chunks);
  // A slow download is not a hung engine: the archive arriving in three pieces 1.5 s apart
  // (more than the 1 s stall time, while the engine has taken all it was given) loads.
  const patient = new Engine({ socketPath: engine.socketPath, timeouts: { progressMs: 1000 } });
  const third = Math.ceil(archive.length / 3);
  const trickle = Readable.from((async function* () {
    for (let at = 0; at < archive.length; at += third) {
      if (at > 0) await sleep(1500);
      yield archive.subarray(at, at + third);
    }
  })());
  const loaded = await patient.loadImage(trickle);
  assert.ok(loaded.names.some((n) => n.startsWith(TASKENV_PASS.split(':')[0]!)), JSON.stringify(loaded));
  engine.freeze();
  const outcomes: string[] = [];
  try {
    let began = Date.now();
    await assert.rejects(hurried.loadImage(Readable.from([archive])), (err: unknown) => err instanceof EngineError && err.kind === 'unreachable'
      && /made no progress for 2 seconds when asked to load an image: it is hung/.test(err.message));
    outcomes.push(`load of a ${(archive.length / 2 ** 20).toFixed(1)} MiB archive ended after ${((Date.now() - began) / 1000).toFixed(1)} s`);
    began = Date.now();
    await assert.rejects(hurried.pull('registry.invalid/nothing', 'latest', undefined, () => undefined), (err: unknown) => err instanceof EngineError && err.kind === 'unreachable'
      && /made no progress for 2 seconds when asked to pull registry\.invalid\/nothing:latest: it is hung/.test(err.message));
    outcomes.push(`pull ended after ${((Date.now() - began) / 1000).toFixed(1)} s`);
  } finally {
    engine.thaw();
  }
  // Thawed, the engine answers as before (the abandoned requests hold nothing up).
  await engine.engine().ping();
  rows.push(`| Docker engine | hung (SIGSTOP) under an image load and a pull (progress timeout 2 s) | ${outcomes.join('; ')}, as a hung engine (a load whose archive arrives slower than the stall time, the engine answering, loads) | - | - | - |`);
});
