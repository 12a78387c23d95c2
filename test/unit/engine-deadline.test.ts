// The bounded time the engine has for the calls before a task's container starts, and the
// stall clock of pulls and loads (lib/docker/engine-deadline.ts), on short real timers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { EngineError, unreachableEngine } from '../../lib/docker/engine-error.ts';
import { StallClock, answerWithin, engineHungError, engineStalledError } from '../../lib/docker/engine-deadline.ts';

const hung = () => engineHungError('create network x', 40, '/run/x.sock');

test('a hung call is an engine that does not answer, and says which call and how long', () => {
  const err = engineHungError('create a container from busybox', 60_000, '/var/run/docker.sock');
  assert.ok(err instanceof EngineError);
  assert.equal(err.kind, 'unreachable');
  assert.equal(unreachableEngine(new Error('image failed', { cause: err })), err);
  assert.equal(err.message, 'Docker engine at /var/run/docker.sock did not answer within 60 seconds when asked to create a container from busybox: it is hung');
  assert.match(engineHungError('inspect image x', 1000, '/s').message, /within 1 second when/);
  assert.match(engineHungError('inspect image x', 2500, '/s').message, /within 2\.5 seconds when/);
  assert.equal(engineStalledError('pull x:1', 300_000, '/s').message, 'Docker engine at /s made no progress for 300 seconds when asked to pull x:1: it is hung');
});

test('an answer in time is passed on, and so is a failure in time; nothing is undone', async () => {
  const undone: string[] = [];
  assert.equal(await answerWithin(sleep(5).then(() => 'id1'), 200, hung, (v) => undone.push(v)), 'id1');
  await assert.rejects(answerWithin(Promise.reject(new Error('refused')), 200, hung), /refused/);
  await sleep(20);
  assert.deepEqual(undone, []);
});

test('no answer in time: the hung error, once; a late answer is handed to undo, a late failure dropped', async () => {
  const undone: string[] = [];
  let answer!: (v: string) => void;
  const work = new Promise<string>((resolve) => { answer = resolve; });
  const started = Date.now();
  await assert.rejects(answerWithin(work, 40, hung, (v) => { undone.push(v); }), (err: unknown) => err instanceof EngineError && err.kind === 'unreachable' && /within 0\.04 seconds when asked to create network x/.test(err.message));
  assert.ok(Date.now() - started >= 35);
  assert.deepEqual(undone, []);
  answer('late-network');
  await sleep(5);
  assert.deepEqual(undone, ['late-network']);

  const undoneAfterFailure: string[] = [];
  let fail!: (e: Error) => void;
  const failing = new Promise<string>((_r, reject) => { fail = reject; });
  await assert.rejects(answerWithin(failing, 20, hung, (v) => { undoneAfterFailure.push(v); }), /hung/);
  fail(new Error('late failure')); // must not be an unhandled rejection
  await sleep(5);
  assert.deepEqual(undoneAfterFailure, []);
});

test('an undo that throws or rejects does not escape', async () => {
  let answer!: (v: string) => void;
  const work = new Promise<string>((resolve) => { answer = resolve; });
  await assert.rejects(answerWithin(work, 10, hung, () => { throw new Error('undo broke'); }), /hung/);
  answer('x');
  let answer2!: (v: string) => void;
  const work2 = new Promise<string>((resolve) => { answer2 = resolve; });
  await assert.rejects(answerWithin(work2, 10, hung, () => Promise.reject(new Error('undo rejected'))), /hung/);
  answer2('y');
  await sleep(10);
});

test('the stall clock fires once after a quiet spell, never while progress keeps coming', async () => {
  let fired = 0;
  const clock = new StallClock(250, hung);
  clock.signal.addEventListener('abort', () => { fired++; });
  for (let i = 0; i < 20; i++) { await sleep(20); clock.progress(); }
  assert.equal(fired, 0, '400 ms of progress every 20 ms');
  await sleep(400);
  assert.equal(fired, 1);
  clock.progress();
  await sleep(400);
  assert.equal(fired, 1, 'once stalled, it stays stopped');
});

test('the stall clock does not fire while the engine is not the one keeping us waiting, nor once stopped', async () => {
  let fired = 0;
  let waitingForEngine = false;
  const clock = new StallClock(30, hung, () => waitingForEngine);
  clock.signal.addEventListener('abort', () => { fired++; });
  await sleep(100);
  assert.equal(fired, 0, 'nothing was waiting for the engine (the download was slow)');
  waitingForEngine = true;
  await sleep(70);
  assert.equal(fired, 1);
  await assert.rejects(clock.stalled, (err: unknown) => err === clock.signal.reason && /did not answer within/.test((err as Error).message), 'stalled rejects with the error the signal carries');
  let stoppedFired = 0;
  const stopped = new StallClock(20, hung);
  stopped.signal.addEventListener('abort', () => { stoppedFired++; });
  stopped.stop();
  await sleep(50);
  assert.equal(stoppedFired, 0);
  clock.stop();
});
