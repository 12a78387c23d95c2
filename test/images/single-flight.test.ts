// Single flight: concurrent callers of one key share one run of the work and hear its progress;
// a caller that gives up stops waiting, and the work stops only when nobody waits any more.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { SingleFlight } from '../../lib/images/single-flight.ts';

function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => { open = r; });
  return { promise, open };
}

test('concurrent callers share one run and every one hears its lines', async () => {
  const flights = new SingleFlight<string>();
  let runs = 0;
  const g = gate();
  const linesA: string[] = [];
  const linesB: string[] = [];
  const work = async (ctx: { emit(line: string): void }) => { runs++; await g.promise; ctx.emit('half way'); return 'image-id'; };
  const a = flights.run('k', work, { emit: (l) => linesA.push(l) });
  assert.equal(flights.has('k'), true);
  const b = flights.run('k', work, { emit: (l) => linesB.push(l) });
  g.open();
  assert.deepEqual(await a, { value: 'image-id', shared: false });
  assert.deepEqual(await b, { value: 'image-id', shared: true });
  assert.equal(runs, 1);
  assert.deepEqual(linesA, ['half way']);
  assert.deepEqual(linesB, ['half way']);
  assert.equal(flights.has('k'), false);
  assert.deepEqual(await flights.run('k', work), { value: 'image-id', shared: false });
  assert.equal(runs, 2, 'a finished flight is not reused');
});

test('a failure reaches every caller', async () => {
  const flights = new SingleFlight<string>();
  const g = gate();
  const work = async () => { await g.promise; throw new Error('artifact is corrupt'); };
  const a = flights.run('k', work);
  const b = flights.run('k', work);
  g.open();
  await assert.rejects(a, /artifact is corrupt/);
  await assert.rejects(b, /artifact is corrupt/);
});

test('a caller that gives up leaves the others waiting; the last one to give up stops the work', async () => {
  const flights = new SingleFlight<string>();
  let workSignal: AbortSignal | undefined;
  const work = async (ctx: { signal: AbortSignal }) => {
    workSignal = ctx.signal;
    await sleep(60_000, undefined, { signal: ctx.signal });
    return 'never';
  };
  const ca = new AbortController();
  const cb = new AbortController();
  const a = flights.run('k', work, { signal: ca.signal });
  const b = flights.run('k', work, { signal: cb.signal });
  ca.abort(new Error('task A cancelled'));
  await assert.rejects(a, /task A cancelled/);
  assert.equal(workSignal?.aborted, false, 'B still waits');
  cb.abort(new Error('task B cancelled'));
  await assert.rejects(b, /task B cancelled/);
  assert.equal(workSignal?.aborted, true);
  assert.equal(flights.has('k'), false, 'an abandoned flight is not joined');
});
