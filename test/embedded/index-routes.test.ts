// Completed tasks are indexed under their `index.<namespace>` routes, through the queue.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import taskcluster from 'taskcluster-client';
import {
  startQueue, newTaskQueueId, taskDef, claimOne, outcome, slugid, fromNow, eventually, type TestQueue,
} from './queue-fixtures.ts';

let q: TestQueue;
let index: any;

before(async () => {
  q = await startQueue();
  index = new taskcluster.Index({ rootUrl: q.deployment.rootUrl, credentials: q.deployment.credentials, retries: 0 });
});
after(async () => { await q.close(); });

async function runTask(extra: Record<string, unknown>, resolve: 'completed' | 'failed'): Promise<string> {
  const taskQueueId = newTaskQueueId();
  const taskId = slugid();
  await q.queue.createTask(taskId, taskDef(taskQueueId, extra));
  const claim = await claimOne(q.queue, taskQueueId);
  const worker = q.client(claim.credentials);
  if (resolve === 'completed') await worker.reportCompleted(taskId, claim.runId);
  else await worker.reportFailed(taskId, claim.runId);
  return taskId;
}

const found = (path: string) => async () => {
  const res = await outcome(index.findTask(path));
  return res.statusCode === 200 ? index.findTask(path) : undefined;
};

test('a completed task is indexed under each index.<namespace> route with rank 0, data {} and its expiry', async () => {
  const expires = fromNow('3 days');
  const taskId = await runTask({
    routes: ['index.project.app.latest', 'index.project.app.rev-abc', 'tc-treeherder.v2.whatever'], expires,
  }, 'completed');
  const latest = await eventually(found('project.app.latest'), 10_000, 'the task to be indexed');
  assert.equal(latest.taskId, taskId);
  assert.equal(latest.rank, 0);
  assert.deepEqual(latest.data, {});
  assert.equal(latest.expires, expires);
  assert.equal((await index.findTask('project.app.rev-abc')).taskId, taskId);
  const namespaces = await index.listNamespaces('project.app');
  assert.deepEqual(namespaces.namespaces, [], 'leaf entries are tasks, not namespaces');
  assert.deepEqual((await index.listTasks('project.app')).tasks.map((t: any) => t.namespace).sort(),
    ['project.app.latest', 'project.app.rev-abc']);
});

test('task.extra.index sets rank and data; a failed task is not indexed', async () => {
  const ranked = await runTask({ routes: ['index.ranked.path'], extra: { index: { rank: 42, data: { branch: 'main' } } } }, 'completed');
  const entry = await eventually(found('ranked.path'), 10_000, 'the ranked task to be indexed');
  assert.equal(entry.taskId, ranked);
  assert.equal(entry.rank, 42);
  assert.deepEqual(entry.data, { branch: 'main' });

  await runTask({ routes: ['index.failed.path'] }, 'failed');
  // Index a completed marker afterwards: once it is there, the failed task would have been too.
  await runTask({ routes: ['index.failed.marker'] }, 'completed');
  await eventually(found('failed.marker'), 10_000, 'the marker task to be indexed');
  assert.equal((await outcome(index.findTask('failed.path'))).statusCode, 404);
});
