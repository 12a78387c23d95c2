import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelayMs, withRetries, HttpStatusError, isRetriable } from '../../lib/retry/with-retries.ts';

test('network errors and 5xx are retried, then succeed', async () => {
  let calls = 0;
  const delays: number[] = [];
  const result = await withRetries(async () => {
    calls++;
    if (calls === 1) throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    if (calls === 2) throw new HttpStatusError(503, 'busy');
    return 'ok';
  }, { baseDelayMs: 1, onRetry: (_e, _n, d) => delays.push(d) });
  assert.equal(result, 'ok');
  assert.equal(calls, 3);
  assert.equal(delays.length, 2);
  assert.ok(delays[1] > delays[0], 'backoff grows');
});

test('a 4xx is never retried', async () => {
  let calls = 0;
  await assert.rejects(withRetries(async () => { calls++; throw new HttpStatusError(403, 'signature mismatch'); }, { baseDelayMs: 1 }), /signature mismatch/);
  assert.equal(calls, 1);
  assert.equal(isRetriable({ statusCode: 404 }), false);
  assert.equal(isRetriable({ statusCode: 500 }), true);
});

test('retries stop after the configured count', async () => {
  let calls = 0;
  await assert.rejects(withRetries(async () => { calls++; throw new HttpStatusError(502, 'bad gateway'); }, { retries: 2, baseDelayMs: 1 }));
  assert.equal(calls, 3);
});

test('backoffDelayMs doubles from the base up to the ceiling', () => {
  assert.deepEqual([1, 2, 3, 4, 5].map((n) => backoffDelayMs(n, 100, 1000)), [100, 200, 400, 800, 1000]);
});

test('without jitter the delays are the formula; beforeRetry runs before each new attempt and a throw there ends it', async () => {
  const seen: string[] = [];
  await assert.rejects(withRetries(async (n) => { seen.push(`attempt ${n}`); throw new Error('down'); }, {
    retries: 3, baseDelayMs: 1, jitter: false,
    onRetry: (_e, n, delay) => seen.push(`retry ${n} after ${delay}`),
    beforeRetry: async (n) => { seen.push(`before ${n}`); if (n === 3) throw new Error('gone'); },
  }), /gone/);
  assert.deepEqual(seen, ['attempt 1', 'retry 1 after 1', 'before 2', 'attempt 2', 'retry 2 after 2', 'before 3']);
});

test('shouldRetry decides instead of the HTTP rule', async () => {
  let calls = 0;
  await assert.rejects(withRetries(async () => { calls++; throw Object.assign(new Error('500'), { statusCode: 500 }); }, { retries: 5, baseDelayMs: 1, shouldRetry: () => false }), /500/);
  assert.equal(calls, 1);
});
