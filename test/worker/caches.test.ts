// Volume caches as a task owner sees them: data persists between tasks, scopes (direct or
// through a role) are required, concurrent tasks get their own instances, and
// onExitStatus.purgeCaches throws an instance away.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import taskcluster from 'taskcluster-client';
import { WorkerHarness } from '../support/worker.ts';
import { TASKENV_PASS } from '../support/docker.ts';

let h: WorkerHarness;
before(async () => { h = await WorkerHarness.start({ config: { capacity: 2 } }); });
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
  const auth = new taskcluster.Auth({ rootUrl: h.embedded.rootUrl, credentials: h.embedded.credentials });
  await auth.createRole('project:caching', { description: 'grants a cache', scopes: ['docker-worker:cache:role-cache'] });
  const taskId = await h.submit(cacheTask('role-cache', 'echo via role > /cache/x'), { scopes: ['assume:project:caching'] });
  assert.equal((await h.waitForResolution(taskId)).state, 'completed');
});

test('two tasks at once get distinct instances of the same cache', async () => {
  const script = 'if [ -e /cache/busy ]; then echo SHARED; exit 1; fi; touch /cache/busy; sleep 2; rm /cache/busy';
  const a = await h.submit(cacheTask('parallel', script), { scopes: ['docker-worker:cache:parallel'] });
  const b = await h.submit(cacheTask('parallel', script), { scopes: ['docker-worker:cache:parallel'] });
  const [sa, sb] = await Promise.all([h.waitForResolution(a), h.waitForResolution(b)]);
  assert.equal(sa.state, 'completed');
  assert.equal(sb.state, 'completed');
});

test('an exit code listed in onExitStatus.purgeCaches throws the instance away', async () => {
  const scopes = ['docker-worker:cache:purgeable'];
  const first = await h.submit(cacheTask('purgeable', 'echo old > /cache/f; exit 3', { onExitStatus: { purgeCaches: [3] } }), { scopes });
  assert.equal((await h.waitForResolution(first)).state, 'failed');
  const second = await h.submit(cacheTask('purgeable', 'test ! -e /cache/f'), { scopes });
  assert.equal((await h.waitForResolution(second)).state, 'completed');
  assert.match(await h.taskLog(second), /Creating new cache instance for "purgeable"/);
});
