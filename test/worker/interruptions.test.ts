// Interruptions at every moment of a run, as the task owner sees them: a cancel or shutdown
// before the container starts, and a shutdown or cancel while artifacts upload after the
// container exited on its own. A shutdown then keeps the task's real result; a cancel still
// means the worker reports nothing and uploads nothing more. The moments are made exact with
// a test proxy that holds one request (test/support/fault-proxy.ts) and an image artifact whose download
// never answers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import taskcluster from 'taskcluster-client';
import { WorkerHarness } from '../support/worker.ts';
import { TASKENV_PASS, testEngine } from '../support/docker.ts';
import { TestProxy } from '../support/fault-proxy.ts';
import { startWorkerBehind } from './test-proxy.ts';

const engine = testEngine();
let hanging: http.Server;
let hangingUrl: string;
before(async () => {
  hanging = http.createServer(() => { /* never answers */ });
  await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
  hangingUrl = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}/image.tar`;
});
after(async () => { hanging.closeAllConnections(); await new Promise<void>((r) => hanging.close(() => r())); });

async function containersOf(taskId: string, workerId: string) {
  return (await engine.listOwnedContainers(workerId)).filter((c) => c.labels['taskcluster.task-id'] === taskId);
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** A completed task whose image artifact `public/hang/image.tar` is a reference to a server that never answers. */
async function hangingImageTask(h: WorkerHarness): Promise<string> {
  const taskId = taskcluster.slugid();
  const taskQueueId = `test-prov/producer-${taskId.slice(0, 8).toLowerCase().replace(/[^a-z0-9]/g, 'x')}`;
  await h.queue.createTask(taskId, {
    taskQueueId, created: new Date().toISOString(), deadline: taskcluster.fromNow('1 hour').toISOString(),
    metadata: { name: 'producer', description: 'image that never downloads', owner: 'test@localhost.localdomain', source: 'https://localhost/test' },
    payload: {},
  });
  const { tasks } = await h.queue.claimWork(taskQueueId, { workerGroup: 'g', workerId: 'producer', tasks: 1 });
  const queue = new taskcluster.Queue({ rootUrl: h.rootUrl, credentials: tasks[0].credentials });
  await queue.createArtifact(taskId, 0, 'public/hang/image.tar', { storageType: 'reference', url: hangingUrl, expires: taskcluster.fromNow('1 day').toISOString(), contentType: 'application/x-tar' });
  await queue.reportCompleted(taskId, 0);
  return taskId;
}

function timingsOf(h: WorkerHarness, taskId: string): Record<string, number> {
  return (h.events('task timings', taskId)[0]?.ms ?? {}) as Record<string, number>;
}

test('cancel before start (the image is still downloading): nothing is reported, no container is created, the log says why', async () => {
  const h = await WorkerHarness.start();
  try {
    const producer = await hangingImageTask(h);
    const taskId = await h.submit({ image: { type: 'task-image', taskId: producer, path: 'public/hang/image.tar' }, command: ['echo', 'never'], maxRunTime: 60 });
    await h.waitForRunning(taskId);
    await h.queue.cancelTask(taskId);
    await until('the worker to finish with the task', () => h.events('task resolved', taskId).length > 0);
    assert.equal(h.events('task resolved', taskId)[0]!.taskState, 'cancelled');
    assert.equal(timingsOf(h, taskId).containerCreated, undefined, 'no container was created');
    const { status } = await h.queue.status(taskId);
    assert.deepEqual(status.runs.map((r) => `${r.state}/${r.reasonResolved}`), ['exception/canceled']);
    assert.equal(h.events('task already resolved by the queue', taskId).length, 0);
    const log = await h.taskLog(taskId);
    assert.match(log, /\[taskcluster:error\] Task was canceled by another entity\./);
    assert.doesNotMatch(log, /=== Task Starting ===/);
    assert.match(log, /Unsuccessful task run with exit code: -1/);
  } finally {
    await h.stop();
  }
});

test('shutdown before start: the run is resolved worker-shutdown and rerun, with the line in its log', async () => {
  const h = await WorkerHarness.start();
  try {
    const producer = await hangingImageTask(h);
    const taskId = await h.submit({ image: { type: 'task-image', taskId: producer, path: 'public/hang/image.tar' }, command: ['echo', 'never'], maxRunTime: 60 });
    await h.waitForRunning(taskId);
    await h.worker!.shutdown('SIGTERM');
    const { status } = await h.queue.status(taskId);
    assert.equal(status.runs[0]!.reasonResolved, 'worker-shutdown');
    assert.equal(status.runs[1]?.state, 'pending', 'the queue reruns it');
    assert.equal(timingsOf(h, taskId).containerCreated, undefined);
    const log = await h.taskLog(taskId);
    assert.match(log, /\[taskcluster:error\] Task has been aborted prematurely\. Reason: worker-shutdown/);
    assert.doesNotMatch(log, /=== Task Starting ===/);
  } finally {
    await h.stop();
  }
});

const exitsAtOnce = {
  image: TASKENV_PASS,
  command: ['/bin/sh', '-c', 'echo a > /tmp/a.txt; echo b > /tmp/b.txt; echo finished'],
  maxRunTime: 60,
  artifacts: { 'public/a.txt': { type: 'file', path: '/tmp/a.txt' }, 'public/b.txt': { type: 'file', path: '/tmp/b.txt' } },
};
const createArtifactA = /\/api\/queue\/v1\/task\/[^/]+\/runs\/0\/artifacts\/public%2Fa\.txt$/;

test('shutdown while artifacts upload (the container exited on its own): the task keeps its result, completed, with every artifact', async () => {
  const h = await WorkerHarness.start({ noWorker: true });
  const proxy = await TestProxy.start(h.rootUrl);
  try {
    const held = proxy.hold('POST', createArtifactA);
    await startWorkerBehind(h, proxy);
    const taskId = await h.submit(exitsAtOnce);
    await held.arrived;
    const stopping = h.worker!.shutdown('SIGTERM'); // interrupts running tasks at once
    assert.equal(h.events('worker shutting down').length, 1);
    held.release();
    await stopping;

    const { status } = await h.queue.status(taskId);
    assert.deepEqual(status.runs.map((r) => r.state), ['completed'], 'no worker-shutdown, no rerun');
    assert.equal(h.events('task resolved', taskId)[0]?.taskState, 'completed');
    assert.equal((await h.artifact(taskId, 0, 'public/a.txt')).text, 'a\n');
    assert.equal((await h.artifact(taskId, 0, 'public/b.txt')).text, 'b\n');
    const log = await h.taskLog(taskId);
    assert.match(log, /Successful task run with exit code: 0 completed in/);
    assert.doesNotMatch(log, /aborted prematurely/);
    assert.deepEqual(await containersOf(taskId, h.config.workerId), []);
  } finally {
    await h.stop();
    await proxy.close();
  }
});

test('cancel while artifacts upload: nothing is reported, no further artifact is uploaded, the log says so', async () => {
  // One upload at a time, so that b.txt is still to come when a.txt is held (with more at once,
  // b.txt would be under way before the cancel, and an upload under way is finished).
  const h = await WorkerHarness.start({ noWorker: true, config: { 'artifacts.uploadParallelism': 1 } });
  const proxy = await TestProxy.start(h.rootUrl);
  try {
    const held = proxy.hold('POST', createArtifactA);
    await startWorkerBehind(h, proxy);
    const taskId = await h.submit(exitsAtOnce);
    await held.arrived;
    await h.queue.cancelTask(taskId);
    await until('the worker to notice the cancel', () => h.events('cancel task', taskId).length > 0);
    held.release();
    await until('the worker to finish with the task', () => h.events('task resolved', taskId).length > 0);

    assert.equal(h.events('task resolved', taskId)[0]!.taskState, 'cancelled');
    assert.equal(h.events('task already resolved by the queue', taskId).length, 0, 'the worker tried to resolve the cancelled run');
    const { status } = await h.queue.status(taskId);
    assert.deepEqual(status.runs.map((r) => `${r.state}/${r.reasonResolved}`), ['exception/canceled']);
    const names = (await h.listArtifacts(taskId)).map((a) => a.name);
    assert.ok(!names.includes('public/b.txt'), `artifacts: ${names.join(', ')}`);
    const log = await h.taskLog(taskId);
    assert.match(log, /^finished\r?$/m);
    assert.match(log, /\[taskcluster:error\] Task was canceled by another entity\./);
    assert.match(log, /Unsuccessful task run with exit code: 0 completed in/);
    assert.deepEqual(await containersOf(taskId, h.config.workerId), []);
  } finally {
    await h.stop();
    await proxy.close();
  }
});
