import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withRetries, HttpStatusError, isRetriable } from '../../lib/retry/with-retries.ts';

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
