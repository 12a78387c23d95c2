// The embedded index service, driven through taskcluster-client over real HTTP.
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
let index: any;

before(async () => {
  stateDir = mkdtempSync(path.join(os.tmpdir(), 'index-test-'));
  deployment = await startCheckedEmbedded({ stateDir, port: 0, log: silentLog, sweepIntervalSeconds: 0.2 });
  index = new taskcluster.Index({ rootUrl: deployment.rootUrl, credentials: deployment.credentials, retries: 0 });
});

after(async () => {
  await deployment.close();
  rmSync(stateDir, { recursive: true, force: true });
});

const inADay = () => taskcluster.fromNow('1 day');
const entry = (taskId: string, rank = 0, data: Record<string, unknown> = {}) => ({ taskId, rank, data, expires: inADay() });

async function statusOf(promise: Promise<unknown>): Promise<number> {
  try { await promise; return 200; } catch (err) { return (err as { statusCode: number }).statusCode; }
}

test('insertTask then findTask returns the indexed task; an unknown path is 404', async () => {
  const taskId = taskcluster.slugid();
  const inserted = await index.insertTask('project.app.latest', entry(taskId, 5, { rev: 'abc' }));
  assert.deepEqual(schemaErrors('/schemas/index/v1/indexed-task-response.json#', inserted), []);
  const found = await index.findTask('project.app.latest');
  assert.deepEqual(schemaErrors('/schemas/index/v1/indexed-task-response.json#', found), []);
  assert.equal(found.namespace, 'project.app.latest');
  assert.equal(found.taskId, taskId);
  assert.equal(found.rank, 5);
  assert.deepEqual(found.data, { rev: 'abc' });
  assert.equal(await statusOf(index.findTask('project.app.nothing-here')), 404);
  // Anonymous callers may read the index.
  const anonymous = new taskcluster.Index({ rootUrl: deployment.rootUrl, credentials: {}, retries: 0 });
  assert.equal((await anonymous.findTask('project.app.latest')).taskId, taskId);
  assert.equal(await statusOf(anonymous.insertTask('project.app.latest', entry(taskcluster.slugid()))), 403);
});

test('a lower rank does not replace the indexed task; an equal or higher rank does', async () => {
  const first = taskcluster.slugid();
  await index.insertTask('rank.test', entry(first, 10));
  const lower = await index.insertTask('rank.test', entry(taskcluster.slugid(), 3));
  assert.equal(lower.taskId, first, 'the response shows the task that stays indexed');
  assert.equal((await index.findTask('rank.test')).taskId, first);
  const higher = taskcluster.slugid();
  await index.insertTask('rank.test', entry(higher, 10));
  assert.equal((await index.findTask('rank.test')).taskId, higher);
});

test('listNamespaces and listTasks page with limit and continuationToken', async () => {
  const ids: string[] = [];
  for (const name of ['a', 'b', 'c', 'd', 'e']) {
    const id = taskcluster.slugid();
    ids.push(id);
    await index.insertTask(`list.tasks.${name}`, entry(id));
  }
  await index.insertTask('list.other.sub.x', entry(taskcluster.slugid()));

  const namespaces = await index.listNamespaces('list');
  assert.deepEqual(schemaErrors('/schemas/index/v1/list-namespaces-response.json#', namespaces), []);
  assert.deepEqual(namespaces.namespaces.map((n: any) => n.namespace), ['list.other', 'list.tasks']);

  const seen: string[] = [];
  let query: Record<string, unknown> = { limit: 2 };
  let pages = 0;
  for (;;) {
    const page = await index.listTasks('list.tasks', query);
    assert.deepEqual(schemaErrors('/schemas/index/v1/list-tasks-response.json#', page), []);
    assert.ok(page.tasks.length <= 2);
    seen.push(...page.tasks.map((t: any) => t.taskId));
    pages++;
    if (!page.continuationToken) break;
    query = { limit: 2, continuationToken: page.continuationToken };
  }
  assert.equal(pages, 3);
  assert.deepEqual(seen, ids);
  assert.equal(await statusOf(index.listTasks('list.tasks', { continuationToken: 'garbage!' })), 400);
});

test('findTasksAtIndex returns the tasks present at the given paths, skipping absent ones', async () => {
  const x = taskcluster.slugid();
  const y = taskcluster.slugid();
  await index.insertTask('many.x', entry(x));
  await index.insertTask('many.y', entry(y));
  const all = await index.findTasksAtIndex({ indexes: ['many.x', 'many.absent', 'many.y'] });
  assert.deepEqual(schemaErrors('/schemas/index/v1/list-tasks-response.json#', all), []);
  assert.deepEqual(all.tasks.map((t: any) => t.taskId), [x, y]);
  const first = await index.findTasksAtIndex({ indexes: ['many.x', 'many.absent', 'many.y'] }, { limit: 1 });
  assert.deepEqual(first.tasks.map((t: any) => t.taskId), [x]);
  const second = await index.findTasksAtIndex({ indexes: ['many.x', 'many.absent', 'many.y'] },
    { limit: 1, continuationToken: first.continuationToken });
  assert.deepEqual(second.tasks.map((t: any) => t.taskId), [y]);
  assert.equal(second.continuationToken, undefined);
});

test('deleteTask removes an indexed task', async () => {
  await index.insertTask('delete.me', entry(taskcluster.slugid()));
  await index.deleteTask('delete.me');
  assert.equal(await statusOf(index.findTask('delete.me')), 404);
});

test('an expired entry reads as absent and is swept', async () => {
  await index.insertTask('expiry.soon', { taskId: taskcluster.slugid(), rank: 0, data: {}, expires: new Date(Date.now() + 800) });
  assert.equal((await index.listTasks('expiry')).tasks.length, 1);
  await new Promise((r) => setTimeout(r, 1200));
  assert.equal(await statusOf(index.findTask('expiry.soon')), 404);
  assert.equal((await index.listTasks('expiry')).tasks.length, 0);
});

test('invalid namespaces are rejected with 400', async () => {
  assert.equal(await statusOf(index.insertTask('bad..namespace', entry(taskcluster.slugid()))), 400);
  assert.equal(await statusOf(index.insertTask('bad namespace', entry(taskcluster.slugid()))), 400);
});

test('findArtifactFromTask redirects to the queue: plain URL for public artifacts, signed otherwise', async () => {
  const taskId = taskcluster.slugid();
  await index.insertTask('artifacts.latest', entry(taskId));
  const anonymous = new taskcluster.Index({ rootUrl: deployment.rootUrl, credentials: {}, retries: 0 });
  const publicUrl = anonymous.buildUrl(anonymous.findArtifactFromTask, 'artifacts.latest', 'public/build/target.tar.gz');
  const res = await fetch(publicUrl, { redirect: 'manual' });
  assert.equal(res.status, 303);
  const location = new URL(res.headers.get('location')!);
  assert.equal(location.pathname, `/api/queue/v1/task/${taskId}/artifacts/public%2Fbuild%2Ftarget.tar.gz`);
  assert.equal(location.searchParams.get('bewit'), null);

  assert.equal((await fetch(anonymous.buildUrl(anonymous.findArtifactFromTask, 'artifacts.latest', 'private/key'), { redirect: 'manual' })).status, 403);
  const signed = index.buildSignedUrl(index.findArtifactFromTask, 'artifacts.latest', 'private/key');
  const privateRes = await fetch(signed, { redirect: 'manual' });
  assert.equal(privateRes.status, 303);
  assert.ok(new URL(privateRes.headers.get('location')!).searchParams.get('bewit'), 'private artifacts get a signed queue URL');
  assert.equal((await fetch(index.buildSignedUrl(index.findArtifactFromTask, 'artifacts.none', 'public/x'), { redirect: 'manual' })).status, 404);
});

test('the root namespace lists the top-level namespaces and tasks', async () => {
  await index.insertTask('rootlisting.x', entry(taskcluster.slugid()));
  const top = await index.listNamespaces('');
  assert.ok(top.namespaces.some((n: { namespace: string }) => n.namespace === 'rootlisting'));
  assert.deepEqual(schemaErrors('/schemas/index/v1/list-namespaces-response.json#', top), []);
  const id = taskcluster.slugid();
  await index.insertTask('toplevel', entry(id));
  const tasks = await index.listTasks('');
  assert.ok(tasks.tasks.some((t: { taskId: string }) => t.taskId === id));
});
