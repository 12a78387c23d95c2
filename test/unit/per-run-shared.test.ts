// What a run's features share: made once, closed once by the last holder, never closed when
// making it failed, and a failed make releases the holder that asked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PerRunShared } from '../../lib/features/per-run-shared.ts';

test('made by the first holder, closed once when the last one gives it back', async () => {
  const shared = new PerRunShared<{ id: number }>();
  const run = {};
  let made = 0;
  const closed: number[] = [];
  const make = async () => ({ id: ++made });
  const close = async (v: { id: number }) => { closed.push(v.id); };
  const [a, b] = await Promise.all([shared.acquire(run, make, close), shared.acquire(run, make, close)]);
  assert.equal(made, 1);
  assert.equal(a.value, b.value);
  await a.release();
  await a.release();
  assert.deepEqual(closed, [], 'b still holds it');
  await b.release();
  assert.deepEqual(closed, [1]);
  const c = await shared.acquire(run, make, close);
  assert.equal(c.value.id, 2, 'a new one after the last release');
  await c.release();
  assert.deepEqual(closed, [1, 2]);
});

test('a failed make throws to every holder and closes nothing; the next acquire tries again', async () => {
  const shared = new PerRunShared<string>();
  const run = {};
  let closes = 0;
  const failing = async (): Promise<string> => { throw new Error('port 80 busy'); };
  await Promise.all([
    assert.rejects(shared.acquire(run, failing, async () => { closes++; }), /port 80 busy/),
    assert.rejects(shared.acquire(run, failing, async () => { closes++; }), /port 80 busy/),
  ]);
  assert.equal(closes, 0);
  const ok = await shared.acquire(run, async () => 'fine', async () => { closes++; });
  assert.equal(ok.value, 'fine');
  await ok.release();
  assert.equal(closes, 1);
});
