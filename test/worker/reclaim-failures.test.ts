// When reclaiming goes wrong, as the task owner and the queue see it:
//  - 409 (the run was resolved, here by cancelTask) stops the task without resolving it again,
//    even with the status poll off (task.cancelPollSeconds 0): the reclaim alone notices.
//  - any other 4xx (here the queue refuses the reclaim's credentials: the test proxy spoils
//    the Hawk signature and the embedded queue answers its own 401) is not retried: the task is
//    stopped, its artifacts skipped, its log uploaded, and the run resolved
//    exception/internal-error by the worker — not left to expire as claim-expired.
//  - a queue that keeps failing (503) is retried, and given up while the claim still has time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkerHarness } from '../support/worker.ts';
import { TASKENV_PASS, testEngine } from '../support/docker.ts';
import { TestProxy } from '../support/fault-proxy.ts';
import { startWorkerBehind } from './test-proxy.ts';

const engine = testEngine();
const reclaimPath = /\/api\/queue\/v1\/task\/[^/]+\/runs\/\d+\/reclaim$/;
const longTask = {
  image: TASKENV_PASS,
  command: ['/bin/sh', '-c', 'echo working; echo partial > /tmp/out.txt; sleep 120; echo finished'],
  maxRunTime: 300,
  artifacts: { 'public/out.txt': { type: 'file', path: '/tmp/out.txt' } },
};

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 90_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function containersOf(taskId: string, workerId: string) {
  return (await engine.listOwnedContainers(workerId)).filter((c) => c.labels['taskcluster.task-id'] === taskId);
}

test('reclaim answered 409 (the task was cancelled), status poll off: stopped, not resolved again, the log says it was cancelled', async () => {
  const h = await WorkerHarness.start({ claimTimeoutSeconds: 4, config: { 'task.reclaimMarginSeconds': 1, 'task.cancelPollSeconds': 0 } });
  try {
    const taskId = await h.submit(longTask);
    await until('the container to run', async () => (await containersOf(taskId, h.config.workerId)).some((c) => c.state === 'running'));
    await h.queue.cancelTask(taskId);
    await until('the worker to finish with the task', () => h.events('task resolved', taskId).length > 0);
    assert.equal(h.events('task resolved', taskId)[0]!.taskState, 'cancelled');
    assert.match(String(h.events('cancel task', taskId)[0]?.reason), /reclaim answered 409/);
    assert.equal(h.events('task already resolved by the queue', taskId).length, 0);
    const { status } = await h.queue.status(taskId);
    assert.deepEqual(status.runs.map((r) => `${r.state}/${r.reasonResolved}`), ['exception/canceled']);
    const log = await h.taskLog(taskId);
    assert.match(log, /\[taskcluster:error\] Task was canceled by another entity\./);
    assert.doesNotMatch(log, /^finished/m);
    assert.deepEqual(await containersOf(taskId, h.config.workerId), []);
  } finally {
    await h.stop();
  }
});

test('reclaim refused with a 4xx (401): not retried; the run is resolved exception/internal-error with its log, without its artifacts', async () => {
  const h = await WorkerHarness.start({ noWorker: true, claimTimeoutSeconds: 10, config: { 'task.reclaimMarginSeconds': 1 } });
  const proxy = await TestProxy.start(h.rootUrl);
  try {
    proxy.spoilAuth('POST', reclaimPath);
    await startWorkerBehind(h, proxy);
    const taskId = await h.submit(longTask);
    const status = await h.waitForResolution(taskId, 90_000);
    assert.deepEqual(status.runs.map((r) => `${r.state}/${r.reasonResolved}`), ['exception/internal-error'], 'resolved by the worker, not claim-expired');
    assert.equal(proxy.count('POST', reclaimPath), 1, 'a 4xx is not retried');
    const errors = h.events('error reclaiming task', taskId);
    assert.equal(errors[0]?.statusCode, 401);
    assert.equal(h.events('task resolved', taskId)[0]?.taskState, 'exception/internal-error');
    const log = await h.taskLog(taskId);
    assert.match(log, /^working\r?$/m);
    assert.match(log, /\[taskcluster:error\] Task has been aborted prematurely\. Reason: Could not reclaim task\. The queue refused: /);
    assert.doesNotMatch(log, /^finished/m);
    const names = (await h.listArtifacts(taskId)).map((a) => a.name);
    assert.ok(!names.includes('public/out.txt'), `artifacts: ${names.join(', ')}`);
    assert.deepEqual(await containersOf(taskId, h.config.workerId), []);
  } finally {
    await h.stop();
    await proxy.close();
  }
});

test('reclaim failing with 503 again and again: retried, then given up in time to resolve exception/internal-error', async () => {
  const h = await WorkerHarness.start({ noWorker: true, claimTimeoutSeconds: 20, config: { 'task.reclaimMarginSeconds': 10 } });
  const proxy = await TestProxy.start(h.rootUrl);
  try {
    proxy.answer('POST', reclaimPath, 503);
    await startWorkerBehind(h, proxy);
    const taskId = await h.submit(longTask);
    const status = await h.waitForResolution(taskId, 90_000);
    assert.deepEqual(status.runs.map((r) => `${r.state}/${r.reasonResolved}`), ['exception/internal-error'], 'resolved by the worker, not claim-expired');
    assert.ok(proxy.count('POST', reclaimPath) > 1, 'retried');
    const log = await h.taskLog(taskId);
    assert.match(log, /\[taskcluster:error\] Task has been aborted prematurely\. Reason: Could not reclaim task before its claim ran out/);
    assert.deepEqual(await containersOf(taskId, h.config.workerId), []);
  } finally {
    await h.stop();
    await proxy.close();
  }
});
