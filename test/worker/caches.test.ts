// Volume caches as a task owner sees them: data persists between tasks and across a worker
// restart, scopes (direct or through a role) are required, bad names are refused, concurrent
// tasks get their own instances, a purge request through the purge-cache service and
// onExitStatus.purgeCaches throw instances away.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import taskcluster from 'taskcluster-client';
import { WorkerHarness } from '../support/worker.ts';
import { TASKENV_PASS } from '../support/docker.ts';
import { FRESH_MS } from '../../lib/cache/purge-poller.ts';

let h: WorkerHarness;
before(async () => { h = await WorkerHarness.start({ config: { capacity: 2, 'cache.purgePollSeconds': 1 } }); });
after(async () => { await h?.stop(); });

const cacheTask = (name: string, script: string, extra: Record<string, unknown> = {}) => ({
  image: TASKENV_PASS, command: ['/bin/sh', '-c', script], maxRunTime: 60, cache: { [name]: '/cache' }, ...extra,
});

test('a cache keeps its contents from one task to the next', async () => {
  const first = await h.submit(cacheTask('persist', 'echo kept > /cache/file'), { scopes: ['docker-worker:cache:persist'] });
  assert.equal((await h.waitForResolution(first)).state, 'completed');
  assert.match(await h.taskLog(first), /Creating new cache instance for "persist" at \/cache/);
  const second = await h.submit(cacheTask('persist', 'cat /cache/file'), { scopes: ['docker-worker:cache:persist'] });
  assert.equal((await h.waitForResolution(second)).state, 'completed');
  const log = await h.taskLog(second);
  assert.match(log, /Using existing cache instance for "persist"/);
  assert.match(log, /^kept\r?$/m);
  assert.match(log, /using cache "persist" -> \/cache/);
});

test('without the cache scope the task is malformed and says which scope is missing', async () => {
  const taskId = await h.submit(cacheTask('secret-cache', 'true'));
  const status = await h.waitForResolution(taskId);
  assert.equal(status.state, 'exception');
  assert.equal(status.runs[0].reasonResolved, 'malformed-payload');
  const log = await h.taskLog(taskId);
  assert.match(log, /Insufficient scopes to attach cache volumes\./);
  assert.match(log, /docker-worker:cache:secret-cache/);
});

test('a cache scope granted through a role is honoured', async () => {
  const auth = new taskcluster.Auth({ rootUrl: h.rootUrl, credentials: h.credentials });
  await auth.createRole('project:caching', { description: 'grants a cache', scopes: ['docker-worker:cache:role-cache'] });
  const taskId = await h.submit(cacheTask('role-cache', 'echo via role > /cache/x'), { scopes: ['assume:project:caching'] });
  assert.equal((await h.waitForResolution(taskId)).state, 'completed');
});

const instancesOf = (name: string) => readdirSync(path.join(h.stateDir, 'caches', name)).filter((e) => !e.startsWith('.')).sort();

test('two tasks at once get distinct instances of the same cache', async () => {
  // Each task says when its container started and ended (epoch seconds).
  const script = 'echo "start $(date +%s)"; if [ -e /cache/busy ]; then echo SHARED; exit 1; fi; touch /cache/busy; '
    + 'sleep 3; rm /cache/busy; echo "end $(date +%s)"';
  const a = await h.submit(cacheTask('parallel', script), { scopes: ['docker-worker:cache:parallel'] });
  const b = await h.submit(cacheTask('parallel', script), { scopes: ['docker-worker:cache:parallel'] });
  const [sa, sb] = await Promise.all([h.waitForResolution(a), h.waitForResolution(b)]);
  const [la, lb] = await Promise.all([h.taskLog(a), h.taskLog(b)]);
  assert.equal(sa.state, 'completed', la);
  assert.equal(sb.state, 'completed', lb);
  const times = (log: string) => ({ start: Number(/^start (\d+)\r?$/m.exec(log)?.[1]), end: Number(/^end (\d+)\r?$/m.exec(log)?.[1]) });
  const ta = times(la);
  const tb = times(lb);
  assert.ok(ta.start < tb.end && tb.start < ta.end, `the two containers ran at the same time: ${JSON.stringify({ ta, tb })}`);
  const instance = (taskId: string) => (h.events('volume caches attached', taskId)[0]?.caches as { instanceId: string }[] | undefined)?.[0]?.instanceId;
  assert.ok(instance(a) && instance(b));
  assert.notEqual(instance(a), instance(b), 'each had its own instance');
  assert.equal(instancesOf('parallel').length, 2, 'two instances on disk');
});

test('cache names with "/" or "::" are refused: malformed-payload, nothing created', async () => {
  for (const name of ['a/b', 'a::b']) {
    const taskId = await h.submit(cacheTask(name, 'true'), { scopes: ['docker-worker:cache:*'] });
    const status = await h.waitForResolution(taskId);
    assert.equal(status.state, 'exception');
    assert.equal(status.runs[0].reasonResolved, 'malformed-payload');
    const log = await h.taskLog(taskId);
    assert.ok(log.includes(`payload.cache has a cache named ${JSON.stringify(name)}; cache names cannot be empty or contain "/" or "::"`), log);
    assert.doesNotMatch(log, /=== Task Starting ===/);
  }
  assert.deepEqual(readdirSync(path.join(h.stateDir, 'caches')).filter((e) => e.startsWith('a')), []);
});

test('purge, then the very next task sees an empty cache: the worker asks for purge requests before a task gets its caches', async () => {
  // The default poll interval (20 s): only the check before caches are acquired can see the request in time.
  const p = await WorkerHarness.start();
  try {
    const scopes = ['docker-worker:cache:to-purge'];
    const first = await p.submit(cacheTask('to-purge', 'echo old > /cache/f'), { scopes });
    assert.equal((await p.waitForResolution(first)).state, 'completed');
    const instances = () => readdirSync(path.join(p.stateDir, 'caches', 'to-purge')).filter((e) => !e.startsWith('.'));
    const [before] = instances();
    await sleep(50); // the request is later than the instance's creation
    const purgeCache = new taskcluster.PurgeCache({ rootUrl: p.rootUrl, credentials: p.credentials });
    await purgeCache.purgeCache(p.taskQueueId, { cacheName: 'to-purge' });
    // The service answers from a list it re-reads every 10 s (the real one too): wait until it lists the request.
    for (let i = 0; ; i++) {
      const { requests } = await purgeCache.purgeRequests(p.taskQueueId) as { requests: { cacheName: string }[] };
      if (requests.some((r) => r.cacheName === 'to-purge')) break;
      assert.ok(i < 150, 'the purge-cache service lists the request within 15 s');
      await sleep(100);
    }
    await sleep(FRESH_MS + 100); // an answer the worker had before the service listed the request is now stale
    const second = await p.submit(cacheTask('to-purge', 'test ! -e /cache/f'), { scopes });
    const status = await p.waitForResolution(second);
    const log = await p.taskLog(second);
    assert.equal(status.state, 'completed', log);
    assert.match(log, /Creating new cache instance for "to-purge"/);
    assert.ok(p.events('purging volume cache').some((e) => e.cacheName === 'to-purge'), 'the worker applied the purge request');
    assert.ok(before && !instances().includes(before), 'the old instance is gone');
  } finally {
    await p.stop();
  }
});

test('a restarted worker on the same state directory keeps its caches', async () => {
  const scopes = ['docker-worker:cache:survives'];
  const first = await h.submit(cacheTask('survives', 'echo "written before the restart" > /cache/note'), { scopes });
  assert.equal((await h.waitForResolution(first)).state, 'completed');
  await h.worker!.shutdown('restart test');
  await h.startWorker();
  const adopted = h.events('adopted volume cache instances').at(-1);
  assert.ok(adopted && (adopted.caches as string[]).includes('survives'), 'the new process adopted the instance');
  const second = await h.submit(cacheTask('survives', 'cat /cache/note'), { scopes });
  const status = await h.waitForResolution(second);
  const log = await h.taskLog(second);
  assert.equal(status.state, 'completed', log);
  assert.match(log, /Using existing cache instance for "survives"/);
  assert.match(log, /^written before the restart\r?$/m);
});

test('an exit code listed in onExitStatus.purgeCaches throws the instance away', async () => {
  const scopes = ['docker-worker:cache:purgeable'];
  const first = await h.submit(cacheTask('purgeable', 'echo old > /cache/f; exit 3', { onExitStatus: { purgeCaches: [3] } }), { scopes });
  assert.equal((await h.waitForResolution(first)).state, 'failed');
  const second = await h.submit(cacheTask('purgeable', 'test ! -e /cache/f'), { scopes });
  assert.equal((await h.waitForResolution(second)).state, 'completed');
  assert.match(await h.taskLog(second), /Creating new cache instance for "purgeable"/);
});
