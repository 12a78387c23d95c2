// The container's output after it exits: the engine may still be delivering what a fast
// writer wrote, and the worker must wait for all of it (a log cut short is data lost), giving
// up only when nothing arrives for a while (a stuck daemon).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { outputEnded } from '../../lib/task/container-run.ts';

test('output that keeps arriving past the stall window is waited for until it ends', async () => {
  const output = new PassThrough();
  output.resume();
  let sent = 0;
  const timer = setInterval(() => {
    output.write('x'.repeat(1000));
    if (++sent === 12) { clearInterval(timer); output.end(); }
  }, 25); // 300 ms of output, never 100 ms without a byte
  const started = Date.now();
  assert.equal(await outputEnded(output, 100), true);
  assert.equal(sent, 12);
  assert.ok(Date.now() - started >= 250, 'it waited for the last chunk');
});

test('output that stops arriving without ending is given up after the stall window', async () => {
  const output = new PassThrough();
  output.resume();
  output.write('some output');
  assert.equal(await outputEnded(output, 50), false);
  assert.equal(output.listenerCount('data'), 0, 'no listener is left behind');
});

test('an output that errors counts as ended (the reader already saw what came)', async () => {
  const output = new PassThrough();
  output.resume();
  setTimeout(() => output.destroy(new Error('socket hang up')), 10);
  assert.equal(await outputEnded(output, 1000), true);
});
