// What the reclaimer makes of a failed reclaim, and how long it keeps trying: pure decisions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyReclaimError, giveUpAt, nextReclaimDelayMs, retryDelayMs, LOST_CLAIM_GUARD_MS } from '../../lib/queue/reclaimer.ts';

const httpError = (statusCode: number) => Object.assign(new Error(`HTTP ${statusCode}`), { statusCode });

test('409 means the run was resolved elsewhere: cancelled', () => {
  assert.equal(classifyReclaimError(httpError(409)), 'cancelled');
});

test('any other 4xx is never retried: the claim is lost at once', () => {
  for (const code of [400, 401, 403, 404, 424]) assert.equal(classifyReclaimError(httpError(code)), 'lost', String(code));
});

test('5xx and network errors are transient: retried', () => {
  for (const code of [500, 502, 503]) assert.equal(classifyReclaimError(httpError(code)), 'transient', String(code));
  assert.equal(classifyReclaimError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })), 'transient');
});

test('retries stop while the claim still has time: 30 s before takenUntil on a long claim', () => {
  const takenUntil = 1_000_000_000;
  assert.equal(giveUpAt(takenUntil, takenUntil - 60_000), takenUntil - LOST_CLAIM_GUARD_MS);
  assert.equal(LOST_CLAIM_GUARD_MS, 30_000);
});

test('on a short claim, half of what was left when reclaiming began is kept', () => {
  const takenUntil = 1_000_000_000;
  assert.equal(giveUpAt(takenUntil, takenUntil - 4000), takenUntil - 2000);
  assert.equal(giveUpAt(takenUntil, takenUntil + 1000), takenUntil, 'never after takenUntil');
});

test('retry delays double from 1 s and stay at 10 s', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6].map(retryDelayMs), [1000, 2000, 4000, 8000, 10_000, 10_000]);
});

test('the next reclaim comes a margin before takenUntil, at the latest half way, never before a quarter', () => {
  assert.equal(nextReclaimDelayMs(1_200_000, 60), 600_000);
  assert.equal(nextReclaimDelayMs(100_000, 60), 40_000);
  assert.equal(nextReclaimDelayMs(4000, 1), 2000);
  assert.equal(nextReclaimDelayMs(4000, 60), 1000);
});
