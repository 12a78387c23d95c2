// Stage 4 against the real engine: what the task log and the run's result say when the
// container runs out of memory, when maxRunTime is beyond what a Node timer can hold, and when
// the run is interrupted before the container starts. (Payloads cannot ask for a memory
// limit, so the OOM case creates its container with one directly: the path from the engine's
// OOMKilled to the task log line is the same.)
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { Engine } from '../../lib/docker/engine.ts';
import { TaskLog } from '../../lib/log/task-log.ts';
import { longTimeout, runContainer, OOM_MESSAGE } from '../../lib/task/container-run.ts';
import { TASKENV_PASS, DOCKER_SOCKET, dockerCli, removeOwnedBy, testEngine, testWorkerId } from '../support/docker.ts';
import { EngineError } from '../../lib/docker/engine-error.ts';
import type { AttachedOutput } from '../../lib/docker/attach-socket.ts';

const engine = testEngine();
const workerId = testWorkerId('container-run');
const dir = mkdtempSync(path.join(os.tmpdir(), 'container-run-'));
after(async () => { await removeOwnedBy(engine, workerId); rmSync(dir, { recursive: true, force: true }); });

/** The real engine, except that attaching fails: the run falls back to the followed log. */
class AttachRefusingEngine extends Engine {
  override attachOutput(): Promise<AttachedOutput> {
    return Promise.reject(new EngineError('server', 'Docker could not attach (refused for this test)'));
  }
}

async function run(cmd: string[], options: { maxRunTimeSeconds?: number; signal?: AbortSignal; memory?: number; tty?: boolean; engine?: Engine; whileRunning?: (id: string) => Promise<void> } = {}) {
  const tty = options.tty ?? true;
  const id = await engine.createContainer({
    Image: TASKENV_PASS, Cmd: cmd, Tty: tty,
    HostConfig: options.memory ? { Memory: options.memory, MemorySwap: options.memory } : {},
  }, { workerId });
  const taskLog = await TaskLog.create({ dir });
  const running = runContainer(options.engine ?? engine, id, taskLog, { maxRunTimeSeconds: options.maxRunTimeSeconds ?? 60, signal: options.signal ?? new AbortController().signal, tty });
  if (options.whileRunning) {
    while ((await engine.inspectContainer(id)).State.Running !== true) await sleep(50);
    await options.whileRunning(id);
  }
  const result = await running;
  await taskLog.close();
  const text = readFileSync(taskLog.path, 'utf8');
  const state = (await engine.inspectContainer(id)).State;
  await taskLog.release();
  await engine.removeContainer(id);
  return { result, text, state };
}

test('a container the OOM killer stopped: the task log says so in plain words', async () => {
  const { result, text } = await run(['sh', '-c', 'tail /dev/zero'], { memory: 16 * 1024 * 1024 });
  assert.equal(result.oomKilled, true);
  assert.notEqual(result.exitCode, 0);
  assert.ok(text.includes(`[taskcluster:error] ${OOM_MESSAGE}`), text);
});

test('an ordinary exit has no OOM line', async () => {
  const { result, text } = await run(['sh', '-c', 'echo fine']);
  assert.equal(result.oomKilled, false);
  assert.equal(result.exitCode, 0);
  assert.doesNotMatch(text, /out of memory/);
});

test('a container stopped through the engine (as an engine shutting down does): not the task\'s exit, and the result says so', async () => {
  // `docker stop` is what an engine stopping without live-restore does to each container (a
  // `stop` event after SIGTERM, SIGKILL after the grace time); the worker itself only kills.
  const { result } = await run(['sh', '-c', 'echo started; sleep 30'], { whileRunning: async (id) => { dockerCli(['stop', '-t', '1', id]); } });
  assert.equal(result.exitCode, 137);
  assert.equal(result.interrupted, false);
  assert.match(result.engineStopped ?? '', /^The Docker engine stopped the task's container before the task ended: the engine was stopped or restarted/);
});

test('a task killed by a signal of its own (exit 137): its own failure, not the engine\'s', async () => {
  // (PID 1 of a container ignores a SIGKILL from inside: a child is killed and its status passed on.)
  const { result, text } = await run(['sh', '-c', 'echo started; sh -c \'kill -9 $$\'; exit $?']);
  assert.equal(result.exitCode, 137);
  assert.equal(result.engineStopped, undefined);
  assert.doesNotMatch(text, /Docker engine/);
});

test('an engine that does not answer when the container is to start: the host\'s problem, not a start error of the task', async () => {
  const nowhere = new Engine({ socketPath: path.join(dir, 'no-docker-here.sock') });
  const taskLog = await TaskLog.create({ dir });
  const result = await runContainer(nowhere, 'f'.repeat(64), taskLog, { maxRunTimeSeconds: 60, signal: new AbortController().signal });
  await taskLog.close();
  assert.equal(result.startError, undefined);
  assert.equal(result.interrupted, false);
  assert.match(result.engineStopped ?? '', /^The Docker engine did not answer while the worker prepared or ran the task \(Docker engine not reachable at .*no-docker-here\.sock/);
});

test('a hung engine (it takes the connection, never answers) before the start: the attach is given up after the call timeout, start is never asked for', async () => {
  const socketPath = path.join(dir, 'hung-docker.sock');
  const requests: string[] = [];
  const hung = net.createServer((socket) => { socket.on('data', (d) => { const line = d.toString('latin1').split('\r\n')[0]!; if (/^[A-Z]+ \//.test(line)) requests.push(line); }); });
  hung.listen(socketPath);
  await once(hung, 'listening');
  try {
    const taskLog = await TaskLog.create({ dir });
    const began = Date.now();
    const result = await runContainer(new Engine({ socketPath, timeouts: { callMs: 300 } }), 'e'.repeat(64), taskLog, { maxRunTimeSeconds: 60, signal: new AbortController().signal });
    const ms = Date.now() - began;
    await taskLog.close();
    await taskLog.release();
    assert.equal(result.startError, undefined);
    assert.equal(result.interrupted, false);
    assert.match(result.engineStopped ?? '', /^The Docker engine did not answer while the worker prepared or ran the task \(Docker engine at .*hung-docker\.sock did not answer within 0\.3 seconds when asked to attach to container e{64}: it is hung\)/);
    assert.ok(ms >= 290, `${ms} ms: not before the call timeout`);
    assert.deepEqual(requests.map((r) => r.replace(/\?.*/, '')), [`POST /containers/${'e'.repeat(64)}/attach`]);
  } finally {
    hung.close();
  }
});

test('maxRunTime beyond a Node timer (30 days) does not kill the container at once', async () => {
  const { result, text } = await run(['sh', '-c', 'sleep 1; echo slept'], { maxRunTimeSeconds: 30 * 24 * 3600 });
  assert.equal(result.timedOut, false);
  assert.equal(result.exitCode, 0);
  assert.match(text, /^slept\r?$/m);
  assert.doesNotMatch(text, /Task timeout/);
});

test('interrupted before the start: the container is never started', async () => {
  const ac = new AbortController();
  ac.abort();
  const { result, state } = await run(['sh', '-c', 'echo ran'], { signal: ac.signal });
  assert.equal(result.interrupted, true);
  assert.equal(state.StartedAt, '0001-01-01T00:00:00Z', 'the container never started');
});

test('interrupted while running: killed, and reported as interrupted rather than as its own exit', async () => {
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 500).unref();
  const { result } = await run(['sh', '-c', 'sleep 60'], { signal: ac.signal });
  assert.equal(result.interrupted, true);
  assert.equal(result.timedOut, false);
});

// The output is read through an attach made before the start (create, attach, start: what
// `docker run` does), so a task printing from its very first instruction loses nothing, and a
// fast writer's last bytes, written just before the exit, are there too.
const BIG = 24 * 1024 * 1024;
const firstToLast = `printf FIRST; head -c ${BIG} /dev/zero | tr '\\0' a; printf LAST`;

test('with a TTY: the first bytes, a fast 24 MiB and the last bytes are all in the log, once', async () => {
  const { result, text } = await run(['sh', '-c', firstToLast], { tty: true });
  assert.equal(result.exitCode, 0);
  assert.ok(text.startsWith('FIRST'), `the log starts ${JSON.stringify(text.slice(0, 40))}`);
  assert.ok(text.endsWith('LAST'), `the log ends ${JSON.stringify(text.slice(-40))}`);
  assert.equal(text.length, BIG + 'FIRSTLAST'.length);
});

test('without a TTY: stdout and stderr from the first instruction to the last, frames unpacked', async () => {
  // The engine copies stdout and stderr separately: their order against each other is not
  // kept, each stream's own order is.
  const { result, text } = await run(['sh', '-c', `printf ERR-FIRST >&2; printf OUT-FIRST; head -c ${BIG} /dev/zero | tr '\\0' a; printf OUT-LAST; printf ERR-LAST >&2`], { tty: false });
  assert.equal(result.exitCode, 0);
  assert.equal(text.length, BIG + 'ERR-FIRSTOUT-FIRSTOUT-LASTERR-LAST'.length);
  for (const marker of ['ERR-FIRST', 'ERR-LAST']) assert.equal(text.split(marker).length, 2, `${marker} once`);
  const stdout = text.replace('ERR-FIRST', '').replace('ERR-LAST', '');
  assert.ok(stdout.startsWith('OUT-FIRST') && stdout.endsWith('OUT-LAST'), `stdout ${JSON.stringify(stdout.slice(0, 20))}…${JSON.stringify(stdout.slice(-20))}`);
  assert.match(stdout.slice(9, -8), /^a+$/, 'no frame header bytes among the output');
});

test('when the attach fails, the followed log (read after the start) still has the first bytes, and all of them once', async () => {
  for (const tty of [true, false]) {
    const { result, text } = await run(['sh', '-c', firstToLast], { tty, engine: new AttachRefusingEngine({ socketPath: DOCKER_SOCKET }) });
    assert.equal(result.exitCode, 0);
    assert.ok(text.startsWith('FIRST'), `tty ${tty}: the log starts ${JSON.stringify(text.slice(0, 40))}`);
    assert.equal(text.split('FIRST').length, 2, `tty ${tty}: never repeated`);
    assert.match(text, /a{1000}LAST$/, `tty ${tty}: the last bytes`);
  }
});

test('a container that prints and exits at once, twenty times: never a byte missing', async () => {
  for (const tty of [true, false]) {
    const texts = await Promise.all(Array.from({ length: 10 }, (_, i) => run(['sh', '-c', `echo first ${i}; echo last ${i}`], { tty })));
    for (const [i, { text }] of texts.entries()) assert.equal(text.replace(/\r/g, ''), `first ${i}\nlast ${i}\n`, `tty ${tty}, container ${i}`);
  }
});

test('longTimeout: a delay beyond setTimeout\'s limit is not clamped to 1 ms', async () => {
  let fired = false;
  const t = longTimeout(3_000_000_000, () => { fired = true; });
  await sleep(50); // a clamped timer fires after 1 ms
  assert.equal(fired, false);
  t.clear();
});

test('longTimeout: a long delay is chained from shorter timers and fires once', async () => {
  let fired = 0;
  await new Promise<void>((resolve) => { longTimeout(35, () => { fired++; resolve(); }, 10); });
  await sleep(30);
  assert.equal(fired, 1);
});

test('longTimeout: clear() stops it between chained timers', async () => {
  let fired = false;
  const t = longTimeout(40, () => { fired = true; }, 10);
  await sleep(15);
  t.clear();
  await sleep(60);
  assert.equal(fired, false);
});
