// The embedded purge-cache service, driven through taskcluster-client over real HTTP.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import taskcluster from 'taskcluster-client';
import { startCheckedEmbedded, schemaErrors, type CheckedDeployment } from './schema-check.ts';
import { silentLog } from '../../lib/log/worker-log.ts';

let deployment: CheckedDeployment;
let stateDir: string;
let purgeCache: any;

before(async () => {
  stateDir = mkdtempSync(path.join(os.tmpdir(), 'purge-cache-test-'));
  // These tests read the stored requests: no answers from the service's short-lived cache.
  deployment = await startCheckedEmbedded({ stateDir, port: 0, log: silentLog, sweepIntervalSeconds: 0.2, purgeRequestsCacheSeconds: 0 });
  purgeCache = new taskcluster.PurgeCache({ rootUrl: deployment.rootUrl, credentials: deployment.credentials, retries: 0 });
});

after(async () => {
  await deployment.close();
  rmSync(stateDir, { recursive: true, force: true });
});

async function statusOf(promise: Promise<unknown>): Promise<number> {
  try { await promise; return 200; } catch (err) { return (err as { statusCode: number }).statusCode; }
}

test('a purge request is listed for its worker pool with before = when it was made', async () => {
  const made = Date.now();
  await purgeCache.purgeCache('prov/worker-a', { cacheName: 'level-3-checkouts' });
  const listed = await purgeCache.purgeRequests('prov/worker-a');
  assert.deepEqual(schemaErrors('/schemas/purge-cache/v1/purge-cache-request-list.json#', listed), []);
  assert.equal(listed.requests.length, 1);
  const [request] = listed.requests;
  assert.equal(request.provisionerId, 'prov');
  assert.equal(request.workerType, 'worker-a');
  assert.equal(request.cacheName, 'level-3-checkouts');
  assert.ok(Math.abs(Date.parse(request.before) - made) < 60_000);
  assert.deepEqual((await purgeCache.purgeRequests('prov/other-pool')).requests, []);
});

test('since filters out requests made before it; a repeat purge moves before forward', async () => {
  await purgeCache.purgeCache('prov/worker-b', { cacheName: 'cache-1' });
  const first = (await purgeCache.purgeRequests('prov/worker-b')).requests[0];
  await new Promise((r) => setTimeout(r, 20));
  const since = new Date().toISOString();
  assert.deepEqual((await purgeCache.purgeRequests('prov/worker-b', { since })).requests, []);

  await new Promise((r) => setTimeout(r, 20));
  await purgeCache.purgeCache('prov/worker-b', { cacheName: 'cache-1' });
  await purgeCache.purgeCache('prov/worker-b', { cacheName: 'cache-2' });
  const after = (await purgeCache.purgeRequests('prov/worker-b', { since })).requests;
  assert.deepEqual(after.map((r: any) => r.cacheName), ['cache-1', 'cache-2']);
  assert.ok(Date.parse(after[0].before) > Date.parse(first.before));
  assert.equal(await statusOf(purgeCache.purgeRequests('prov/worker-b', { since: 'yesterday-ish' })), 400);
});

test('allPurgeRequests lists every open request, page by page', async () => {
  for (const pool of ['prov/all-1', 'prov/all-2', 'prov/all-3']) await purgeCache.purgeCache(pool, { cacheName: 'c' });
  const seen: string[] = [];
  let query: Record<string, unknown> = { limit: 2 };
  for (;;) {
    const page = await purgeCache.allPurgeRequests(query);
    assert.deepEqual(schemaErrors('/schemas/purge-cache/v1/all-purge-cache-request-list.json#', page), []);
    assert.ok(page.requests.length <= 2);
    seen.push(...page.requests.map((r: any) => `${r.provisionerId}/${r.workerType}:${r.cacheName}`));
    if (!page.continuationToken) break;
    query = { limit: 2, continuationToken: page.continuationToken };
  }
  for (const pool of ['prov/all-1', 'prov/all-2', 'prov/all-3']) assert.ok(seen.includes(`${pool}:c`));
  assert.equal(new Set(seen).size, seen.length, 'no request is listed twice');
});

test('purging needs purge-cache:<workerPoolId>:<cacheName>; a malformed workerPoolId is 400', async () => {
  const limited = new taskcluster.PurgeCache({
    rootUrl: deployment.rootUrl, retries: 0,
    credentials: taskcluster.createTemporaryCredentials({
      start: new Date(), expiry: taskcluster.fromNow('1 hour'),
      scopes: ['purge-cache:prov/worker-c:allowed-*'], credentials: deployment.credentials,
    }),
  });
  await limited.purgeCache('prov/worker-c', { cacheName: 'allowed-cache' });
  assert.equal(await statusOf(limited.purgeCache('prov/worker-c', { cacheName: 'other-cache' })), 403);
  assert.equal(await statusOf(purgeCache.purgeCache('no-slash-here', { cacheName: 'c' })), 400);
});

test('purgeRequests answers from the pool\'s list as read at most purgeRequestsCacheSeconds ago, as the real service does', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'purge-cache-time-'));
  const cached = await startCheckedEmbedded({ stateDir: dir, port: 0, log: silentLog, purgeRequestsCacheSeconds: 1 });
  try {
    const client = new taskcluster.PurgeCache({ rootUrl: cached.rootUrl, credentials: cached.credentials, retries: 0 });
    assert.deepEqual((await client.purgeRequests('prov/cached')).requests, []);
    await client.purgeCache('prov/cached', { cacheName: 'c' });
    assert.deepEqual((await client.purgeRequests('prov/cached')).requests, [], 'answered from the list read a moment ago');
    assert.deepEqual((await client.purgeRequests('prov/other')).requests, [], 'each pool has its own list');
    await new Promise((resolve) => setTimeout(resolve, 1100));
    assert.deepEqual((await client.purgeRequests('prov/cached')).requests.map((r: any) => r.cacheName), ['c'], 'read again after the cache time');
  } finally {
    await cached.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
