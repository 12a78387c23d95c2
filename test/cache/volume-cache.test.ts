// Named volume caches as a task owner sees them: what one task writes the next one reads,
// concurrent tasks never share an instance, scopes (direct, pool-specific, through a role,
// `*`) decide, purgeCaches and restarts behave. Containers run on the real engine; scopes are
// expanded by the embedded auth service over HTTP.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, rmSync, mkdirSync, writeFileSync, readFileSync, utimesSync } from 'node:fs';
import path from 'node:path';
import taskcluster from 'taskcluster-client';
import { startEmbedded, type EmbeddedDeployment } from '../../lib/embedded/server.ts';
import { silentLog } from '../../lib/log/worker-log.ts';
import { VolumeCaches, CacheScopeError, CacheNameError } from '../../lib/cache/volume-cache.ts';
import { authScopeExpander } from '../../lib/scopes/auth-expander.ts';
import { TaskScopes, type ScopeExpander } from '../../lib/scopes/task-scopes.ts';
import { cacheDirName } from '../../lib/cache/cache-index.ts';
import { testEngine, testWorkerId, removeOwnedBy } from '../support/docker.ts';
import { capturedLog, runWithBinds, tempDir } from './support.ts';

const POOL = 'cache-prov/cache-wt';
const engine = testEngine();
const workerId = testWorkerId('cache');
let stateDir: string;
let deployment: EmbeddedDeployment;
let expandScopes: ScopeExpander;
let expansions = 0;
const dirs: string[] = [];

before(async () => {
  stateDir = tempDir('volume-cache-embedded');
  deployment = await startEmbedded({ stateDir, port: 0, log: silentLog });
  const root = new taskcluster.Auth({ rootUrl: deployment.rootUrl, credentials: deployment.credentials, retries: 0 });
  // The worker's own client holds only what it needs to expand scopes.
  const worker = await root.createClient('worker/cache-test', { description: 'worker', expires: taskcluster.fromNow('1 hour'), scopes: ['auth:expand-scopes'] });
  await root.createRole('project:caching', { description: 'grants a cache', scopes: ['docker-worker:cache:role-granted'] });
  const expand = authScopeExpander({ rootUrl: deployment.rootUrl, credentials: { clientId: worker.clientId, accessToken: worker.accessToken } });
  expandScopes = async (scopes) => { expansions += 1; return expand(scopes); };
});

after(async () => {
  await removeOwnedBy(engine, workerId);
  await deployment.close();
  for (const d of [stateDir, ...dirs]) rmSync(d, { recursive: true, force: true });
});

async function openCaches(dir?: string) {
  const cachesDir = dir ?? path.join(tempDir('volume-caches'), 'caches');
  if (!dir) dirs.push(path.dirname(cachesDir));
  const { log, events } = capturedLog();
  const caches = await VolumeCaches.open({ dir: cachesDir, workerPool: POOL, log });
  return { caches, cachesDir, events };
}

const instancesOn = (cachesDir: string, name: string) => {
  const dir = path.join(cachesDir, cacheDirName(name));
  return existsSync(dir) ? readdirSync(dir).filter((e) => !e.startsWith('.')).sort() : [];
};

test('what one task writes to a cache, the next task reads', async () => {
  const { caches } = await openCaches();
  const scopes = ['docker-worker:cache:checkouts'];
  const first = await caches.acquire('task-1', [{ name: 'checkouts', mountPoint: '/cache' }], new TaskScopes(scopes, expandScopes));
  assert.equal(first.attached[0]!.reused, false);
  const wrote = await runWithBinds(engine, workerId, first.binds, 'echo from-task-1 > /cache/marker && echo ok');
  assert.equal(wrote.exitCode, 0, wrote.output);
  await first.release(false);

  const second = await caches.acquire('task-2', [{ name: 'checkouts', mountPoint: '/somewhere/else' }], new TaskScopes(scopes, expandScopes));
  assert.equal(second.attached[0]!.reused, true);
  const read = await runWithBinds(engine, workerId, second.binds, 'cat /somewhere/else/marker');
  assert.equal(read.exitCode, 0, read.output);
  assert.equal(read.output.trim(), 'from-task-1');
  await second.release(false);
});

test('concurrent tasks never share an instance; the most recently used free one is reused', async () => {
  const { caches, cachesDir } = await openCaches();
  const scopes = ['docker-worker:cache:shared'];
  const request = [{ name: 'shared', mountPoint: '/cache' }];
  const leases = await Promise.all(['a', 'b', 'c'].map((t) => caches.acquire(`task-${t}`, request, new TaskScopes(scopes, expandScopes))));
  const ids = leases.map((l) => l.attached[0]!.instanceId);
  assert.equal(new Set(ids).size, 3, 'three running tasks, three instances');
  assert.deepEqual(instancesOn(cachesDir, 'shared'), [...ids].sort());
  // Each container writes its own name; none sees another's file.
  for (const [i, lease] of leases.entries()) {
    const r = await runWithBinds(engine, workerId, lease.binds, `touch /cache/${i}; ls /cache`);
    assert.equal(r.output.trim(), String(i));
  }
  await leases[0]!.release(false);
  await new Promise((r) => setTimeout(r, 5));
  await leases[2]!.release(false);
  const next = await caches.acquire('task-d', request, new TaskScopes(scopes, expandScopes));
  assert.equal(next.attached[0]!.instanceId, ids[2], 'the instance released last is reused first');
  const busy = await caches.acquire('task-e', request, new TaskScopes(scopes, expandScopes));
  assert.equal(busy.attached[0]!.instanceId, ids[0]);
  const fresh = await caches.acquire('task-f', request, new TaskScopes(scopes, expandScopes));
  assert.ok(!ids.includes(fresh.attached[0]!.instanceId), 'all instances busy: a new one');
  for (const l of [leases[1]!, next, busy, fresh]) await l.release(false);
  await next.release(false); // twice is harmless
});

test('scopes: direct, pool-specific, through a role, and * all grant a cache', async () => {
  const { caches } = await openCaches();
  const cases: [string, string[]][] = [
    ['direct', ['docker-worker:cache:direct']],
    ['pooled', [`docker-worker:cache:pooled:${POOL}`]],
    ['prefixed-a', ['docker-worker:cache:prefixed-*']],
    ['role-granted', ['assume:project:caching']],
    ['anything', ['*']],
  ];
  for (const [name, scopes] of cases) {
    const lease = await caches.acquire('task-scopes', [{ name, mountPoint: '/c' }], new TaskScopes(scopes, expandScopes));
    assert.equal(lease.binds.length, 1, `${name} granted by ${scopes}`);
    await lease.release(false);
  }
});

test('a cache without its scope fails with the missing scope, and nothing is created', async () => {
  const { caches, cachesDir } = await openCaches();
  const before = expansions;
  await assert.rejects(
    caches.acquire('task-x', [{ name: 'granted', mountPoint: '/a' }, { name: 'level-3', mountPoint: '/b' }],
      new TaskScopes(['docker-worker:cache:granted', 'assume:project:caching', `docker-worker:cache:level-3:other/pool`], expandScopes)),
    (err: unknown) => {
      assert.ok(err instanceof CacheScopeError);
      assert.match(err.message, /^Insufficient scopes to attach cache volumes\.\n/);
      assert.match(err.message, /docker-worker:cache:level-3 \(or docker-worker:cache:level-3:cache-prov\/cache-wt\)/);
      assert.doesNotMatch(err.message, /cache:granted/);
      return true;
    });
  assert.equal(expansions, before + 1, 'roles were expanded by the auth service');
  assert.deepEqual(instancesOn(cachesDir, 'granted'), []);
  assert.deepEqual(instancesOn(cachesDir, 'level-3'), []);
  // A role that does not grant it does not help.
  await assert.rejects(caches.acquire('task-y', [{ name: 'other', mountPoint: '/a' }], new TaskScopes(['assume:project:caching'], expandScopes)), CacheScopeError);
  assert.deepEqual(caches.list(), []);
});

test('cache names with "/" or "::" (or empty) are refused before anything is created', async () => {
  const { caches, cachesDir } = await openCaches();
  for (const name of ['a/b', 'a::b', '', '../escape']) {
    await assert.rejects(caches.acquire('task-n', [{ name, mountPoint: '/c' }], new TaskScopes(['*'], expandScopes)), CacheNameError);
  }
  assert.deepEqual(caches.list(), []);
  // Odd but valid names stay inside the caches directory.
  const lease = await caches.acquire('task-n', [{ name: '..', mountPoint: '/c' }, { name: 'with:colon', mountPoint: '/d' }], new TaskScopes(['*'], expandScopes));
  for (const a of lease.attached) assert.ok(a.hostPath.startsWith(cachesDir + path.sep), a.hostPath);
  assert.ok(!lease.binds.some((b) => b.split(':').length !== 2), `binds have no stray colons: ${lease.binds}`);
  const r = await runWithBinds(engine, workerId, lease.binds, 'echo x > /c/f && echo y > /d/f && cat /c/f /d/f');
  assert.equal(r.output.replace(/\s+/g, ''), 'xy');
  await lease.release(false);
});

test('onExitStatus.purgeCaches: a released purged instance is deleted and the next task starts empty', async () => {
  const { caches, cachesDir } = await openCaches();
  const request = [{ name: 'purged', mountPoint: '/cache' }];
  const first = await caches.acquire('task-p1', request, new TaskScopes(['*'], expandScopes));
  await runWithBinds(engine, workerId, first.binds, 'echo stale > /cache/f');
  const hostPath = first.attached[0]!.hostPath;
  await first.release(true);
  assert.equal(existsSync(hostPath), false);
  assert.deepEqual(instancesOn(cachesDir, 'purged'), []);
  const second = await caches.acquire('task-p2', request, new TaskScopes(['*'], expandScopes));
  assert.equal(second.attached[0]!.reused, false);
  const r = await runWithBinds(engine, workerId, second.binds, 'ls /cache | wc -l');
  assert.equal(r.output.trim(), '0');
  await second.release(false);
});

test('a restarted worker adopts the instances on disk: contents and recency survive', async () => {
  const { caches, cachesDir } = await openCaches();
  const request = [{ name: 'kept', mountPoint: '/cache' }];
  const a = await caches.acquire('t1', request, new TaskScopes(['*'], expandScopes));
  const b = await caches.acquire('t2', request, new TaskScopes(['*'], expandScopes));
  await runWithBinds(engine, workerId, a.binds, 'echo older > /cache/f');
  await runWithBinds(engine, workerId, b.binds, 'echo newer > /cache/f');
  await a.release(false);
  await new Promise((r) => setTimeout(r, 5));
  await b.release(false);
  // An instance directory the index does not know (e.g. written just before a crash) is adopted too.
  const strayId = 'zzzz-0123abcd';
  mkdirSync(path.join(cachesDir, cacheDirName('kept'), strayId));
  writeFileSync(path.join(cachesDir, cacheDirName('kept'), strayId, 'f'), 'stray\n');
  const anHourAgo = new Date(Date.now() - 3600_000);
  utimesSync(path.join(cachesDir, cacheDirName('kept'), strayId), anHourAgo, anHourAgo);

  const { caches: reopened, events } = await openCaches(cachesDir);
  assert.equal(reopened.list().length, 3);
  assert.ok(events.some((e) => e.message === 'adopted volume cache instances' && e.count === 3));
  const x = await reopened.acquire('t3', request, new TaskScopes(['*'], expandScopes));
  const y = await reopened.acquire('t4', request, new TaskScopes(['*'], expandScopes));
  const z = await reopened.acquire('t5', request, new TaskScopes(['*'], expandScopes));
  const read = async (l: typeof x) => (await runWithBinds(engine, workerId, l.binds, 'cat /cache/f')).output.trim();
  assert.equal(await read(x), 'newer');
  assert.equal(await read(y), 'older');
  assert.equal(await read(z), 'stray');
  for (const l of [x, y, z]) await l.release(false);
  assert.match(readFileSync(path.join(cachesDir, 'index.json'), 'utf8'), new RegExp(strayId));
});

test('abandon: instances a container may still hold are never handed out again, and are deleted', async () => {
  const { caches, cachesDir } = await openCaches();
  const request = [{ name: 'abandoned', mountPoint: '/cache' }, { name: 'abandoned-too', mountPoint: '/other' }];
  const lease = await caches.acquire('task-stuck', request, new TaskScopes(['*'], expandScopes));
  // The task's container is still there (its removal failed), holding the instances.
  const containerId = await engine.createContainer(
    { Image: 'taskenv_pass:latest', Cmd: ['/bin/sh', '-c', 'echo stale > /cache/f; sleep 600'], HostConfig: { Binds: lease.binds } },
    { workerId, taskId: 'task-stuck' });
  try {
    await engine.startContainer(containerId);
    const paths = lease.attached.map((a) => a.hostPath);
    for (const p of paths) assert.ok(existsSync(p));
    await lease.abandon();
    for (const p of paths) assert.equal(existsSync(p), false, `${p} deleted`);
    assert.deepEqual(caches.list(), [], 'gone from the index');
    assert.deepEqual(instancesOn(cachesDir, 'abandoned'), []);
    assert.doesNotMatch(readFileSync(path.join(cachesDir, 'index.json'), 'utf8'), new RegExp(lease.attached[0]!.instanceId));
    await lease.release(false); // after abandon, release does nothing
    await lease.abandon();
    const next = await caches.acquire('task-next', request, new TaskScopes(['*'], expandScopes));
    assert.ok(next.attached.every((a) => !a.reused && !paths.includes(a.hostPath)), 'fresh instances');
    const r = await runWithBinds(engine, workerId, next.binds, 'ls /cache | wc -l');
    assert.equal(r.output.trim(), '0');
    await next.release(false);
  } finally {
    await engine.removeContainer(containerId);
  }
});

test('abandon while another acquisition waits on scopes: the abandoned instance is not picked', async () => {
  const { caches } = await openCaches();
  const request = [{ name: 'role-granted', mountPoint: '/cache' }];
  const first = await caches.acquire('task-1', request, new TaskScopes(['*'], expandScopes));
  const id = first.attached[0]!.instanceId;
  // The second task's scopes need the auth service (an await) before it picks an instance.
  const second = caches.acquire('task-2', request, new TaskScopes(['assume:project:caching'], expandScopes));
  const abandoning = first.abandon();
  const lease = await second;
  await abandoning;
  assert.notEqual(lease.attached[0]!.instanceId, id);
  assert.equal(lease.attached[0]!.reused, false);
  await lease.release(false);
});
