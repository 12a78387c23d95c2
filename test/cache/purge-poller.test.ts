// Purge requests from the (embedded) purge-cache service reach the volume caches: instances
// created before the request go (free ones at once, busy ones when their task releases
// them), newer ones and other caches stay, and the service is not asked more often than set.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import taskcluster from 'taskcluster-client';
import { startEmbedded, type EmbeddedDeployment } from '../../lib/embedded/server.ts';
import { silentLog } from '../../lib/log/worker-log.ts';
import { VolumeCaches } from '../../lib/cache/volume-cache.ts';
import { PurgePoller, purgeCacheClient, FRESH_MS, type PurgeCacheClient } from '../../lib/cache/purge-poller.ts';
import { capturedLog, tempDir } from './support.ts';
import { TaskScopes } from '../../lib/scopes/task-scopes.ts';

const POOL = 'purge-prov/purge-wt';
let stateDir: string;
let deployment: EmbeddedDeployment;
let purgeCache: any;
const dirs: string[] = [];

before(async () => {
  stateDir = tempDir('purge-poller-embedded');
  deployment = await startEmbedded({ stateDir, port: 0, log: silentLog, purgeRequestsCacheSeconds: 0 });
  purgeCache = new taskcluster.PurgeCache({ rootUrl: deployment.rootUrl, credentials: deployment.credentials, retries: 0 });
});

after(async () => {
  await deployment.close();
  for (const d of [stateDir, ...dirs]) rmSync(d, { recursive: true, force: true });
});

async function setup(intervalSeconds = 0) {
  const dir = tempDir('purge-caches');
  dirs.push(dir);
  const { log, events } = capturedLog();
  const caches = await VolumeCaches.open({ dir: path.join(dir, 'caches'), workerPool: POOL, log });
  const calls: { since?: string }[] = [];
  const real = purgeCacheClient(deployment);
  const client: PurgeCacheClient = {
    purgeRequests: (pool, query) => { calls.push({ ...query }); return real.purgeRequests(pool, query); },
  };
  const poller = new PurgePoller({ client, workerPoolId: POOL, caches, intervalSeconds, log });
  return { caches, poller, calls, events };
}

const lease = (caches: VolumeCaches, taskId: string, name: string) => caches.acquire(taskId, [{ name, mountPoint: '/c' }], new TaskScopes(['*']));

test('a purge request removes older instances: free ones now, busy ones when released; newer ones and other caches stay', async () => {
  const { caches, poller } = await setup();
  const free = await lease(caches, 'old-free', 'builds');
  const busy = await lease(caches, 'old-busy', 'builds');
  const other = await lease(caches, 'other', 'toolchains');
  await other.release(false);
  await new Promise((r) => setTimeout(r, 10));

  await purgeCache.purgeCache(POOL, { cacheName: 'builds' });
  await purgeCache.purgeCache('purge-prov/another-pool', { cacheName: 'toolchains' });
  await new Promise((r) => setTimeout(r, 10));
  const newer = await lease(caches, 'newer', 'builds');
  assert.equal(newer.attached[0]!.reused, false);
  await newer.release(false);
  await free.release(false);

  await poller.poll();
  assert.equal(existsSync(free.attached[0]!.hostPath), false, 'free old instance removed');
  assert.equal(existsSync(busy.attached[0]!.hostPath), true, 'busy instance kept while its task runs');
  assert.equal(existsSync(newer.attached[0]!.hostPath), true, 'instance created after the request kept');
  assert.equal(existsSync(other.attached[0]!.hostPath), true, 'another cache (purged only on another pool) kept');

  // The doomed busy instance is never handed to another task...
  const next = await lease(caches, 'next', 'builds');
  assert.equal(next.attached[0]!.instanceId, newer.attached[0]!.instanceId);
  await next.release(false);
  // ...and goes when its task releases it.
  await busy.release(false);
  assert.equal(existsSync(busy.attached[0]!.hostPath), false);
  assert.deepEqual(caches.list().map((i) => i.name).sort(), ['builds', 'toolchains']);
});

test('the service is asked at most every purgePollSeconds, later polls with since', async () => {
  const { poller, calls } = await setup(3600);
  await poller.maybePoll();
  await poller.maybePoll();
  assert.equal(calls.length, 1);
  assert.equal(calls[0]!.since, undefined, 'the first poll sees every open request');
  await poller.poll();
  assert.equal(calls.length, 2);
  assert.ok(calls[1]!.since && !Number.isNaN(Date.parse(calls[1]!.since)));
});

test('a purge-cache service that does not answer is logged and does not stop the worker', async () => {
  const dir = tempDir('purge-down');
  dirs.push(dir);
  const { log, events } = capturedLog();
  const caches = await VolumeCaches.open({ dir, workerPool: POOL, log });
  const client = new taskcluster.PurgeCache({ rootUrl: 'http://127.0.0.1:9', credentials: deployment.credentials, retries: 0 });
  const poller = new PurgePoller({ client, workerPoolId: POOL, caches, intervalSeconds: 0, log });
  await poller.poll();
  const warning = events.find((e) => e.message === 'could not fetch purge-cache requests');
  assert.ok(warning, 'warned');
  assert.equal(warning.level, 'warn');
  assert.equal(warning.workerPoolId, POOL);
});

test('before caches are acquired: a stale answer is asked for again, a fresh one is not', async () => {
  let now = 1_000_000;
  const { caches } = await setup();
  const calls: number[] = [];
  const client: PurgeCacheClient = { purgeRequests: async () => { calls.push(now); return { requests: [] }; } };
  const { log } = capturedLog();
  const poller = new PurgePoller({ client, workerPoolId: POOL, caches, intervalSeconds: 3600, log, now: () => now });
  await poller.refresh();
  assert.equal(calls.length, 1, 'no answer yet: asked');
  now += FRESH_MS - 1;
  await poller.refresh();
  assert.equal(calls.length, 1, 'an answer asked for within FRESH_MS: not asked again');
  now += 2;
  await poller.refresh();
  assert.equal(calls.length, 2, 'older than FRESH_MS: asked again');
});

test('before caches are acquired: a purge-cache service that hangs delays the task at most the wait, and the next one asks again', async () => {
  const { caches } = await setup();
  let answer!: (list: { requests: [] }) => void;
  let calls = 0;
  const client: PurgeCacheClient = { purgeRequests: () => { calls++; return new Promise((resolve) => { answer = resolve; }); } };
  const { log } = capturedLog();
  const poller = new PurgePoller({ client, workerPoolId: POOL, caches, intervalSeconds: 3600, log });
  const started = Date.now();
  await poller.refresh(FRESH_MS, 200);
  assert.ok(Date.now() - started < 5_000, 'went on without the answer');
  assert.equal(calls, 1);
  answer({ requests: [] });
  await poller.poll();
  await poller.refresh(FRESH_MS, 200);
  assert.equal(calls, 1, 'the late answer counts');
});

test('a VolumeCaches beforeAcquire hook runs before instances are chosen, only for tasks with caches', async () => {
  const dir = tempDir('before-acquire');
  dirs.push(dir);
  const { log } = capturedLog();
  let hooks = 0;
  const caches = await VolumeCaches.open({ dir, workerPool: POOL, log, beforeAcquire: async () => { hooks++; } });
  await (await caches.acquire('t1', [], new TaskScopes(['*']))).release(false);
  assert.equal(hooks, 0);
  await (await lease(caches, 't2', 'c')).release(false);
  assert.equal(hooks, 1);
  await assert.rejects(caches.acquire('t3', [{ name: 'c', mountPoint: '/c' }], new TaskScopes([])));
  assert.equal(hooks, 1, 'a refused task does not ask');
});
