// How many tasks a worker runs at once, and what happens to a running task when the worker
// is told to stop: its log is uploaded, it is resolved exception/worker-shutdown (so the queue
// retries it), its container is removed — in process and as the `bin/worker start` process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import winston from 'winston';
import taskcluster from 'taskcluster-client';
import { WorkerHarness } from '../support/worker.ts';
import { TASKENV_PASS, testEngine } from '../support/docker.ts';
import { startEmbedded } from '../../lib/embedded/server.ts';
import { externalDeployment } from '../support/deployment.ts';

const engine = testEngine();
const repoRoot = path.resolve(import.meta.dirname, '../..');

async function containersOf(taskId: string, workerId: string) {
  return (await engine.listOwnedContainers(workerId)).filter((c) => c.labels['taskcluster.task-id'] === taskId);
}

async function waitForContainer(taskId: string, workerId: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const [c] = await containersOf(taskId, workerId);
    if (c?.state === 'running') return;
    await sleep(50);
  }
  throw new Error(`no running container for ${taskId}`);
}

test('capacity 4: four tasks run at the same time, never more, with six submitted', async () => {
  const h = await WorkerHarness.start({ config: { capacity: 4 } });
  try {
    const taskIds = await Promise.all(Array.from({ length: 6 }, () =>
      h.submit({ image: TASKENV_PASS, command: ['/bin/sh', '-c', 'sleep 3'], maxRunTime: 60 })));
    let most = 0;
    for (;;) {
      const states = await Promise.all(taskIds.map(async (id) => (await h.queue.status(id)).status.state));
      const running = states.filter((s) => s === 'running').length;
      most = Math.max(most, running);
      assert.ok(running <= 4, `${running} tasks running at once: ${states.join(' ')}`);
      assert.ok(h.worker!.runningTasks() <= 4, `the worker runs ${h.worker!.runningTasks()} tasks`);
      if (states.every((s) => ['completed', 'failed', 'exception'].includes(s))) {
        assert.deepEqual(states, Array(6).fill('completed'));
        break;
      }
      await sleep(100);
    }
    assert.equal(most, 4, 'four tasks were running at the same time');
  } finally {
    await h.stop();
  }
});

test('shutdown during a task: the log is uploaded, the run is exception/worker-shutdown and retried, the container is gone', async () => {
  const h = await WorkerHarness.start();
  try {
    const taskId = await h.submit({ image: TASKENV_PASS, command: ['/bin/sh', '-c', 'echo working; sleep 60; echo finished'], maxRunTime: 120 });
    await h.waitForRunning(taskId);
    await waitForContainer(taskId, h.config.workerId);
    await h.worker!.shutdown('SIGTERM');

    const { status } = await h.queue.status(taskId);
    assert.equal(status.runs[0].state, 'exception');
    assert.equal(status.runs[0].reasonResolved, 'worker-shutdown');
    assert.equal(status.runs.length, 2, 'the queue made a new run');
    assert.equal(status.runs[1].state, 'pending');
    assert.equal((status.runs[1] as { reasonCreated?: string }).reasonCreated, 'retry');
    assert.deepEqual(await containersOf(taskId, h.config.workerId), []);

    const listed = Object.fromEntries((await h.listArtifacts(taskId, 0)).map((a) => [a.name, a.storageType]));
    assert.equal(listed['public/logs/live.log'], 'link', 'live.log links to the uploaded log');
    const log = await h.taskLog(taskId, 0);
    assert.match(log, /^working\r?$/m);
    assert.match(log, /\[taskcluster:error\] Task has been aborted prematurely\. Reason: worker-shutdown/);
    assert.doesNotMatch(log, /^finished/m);
    assert.equal(h.events('task resolved', taskId)[0]?.taskState, 'exception/worker-shutdown');
    assert.equal(h.worker!.runningTasks(), 0);
  } finally {
    await h.stop();
  }
});

test('`bin/worker start` exits 0 on SIGTERM during a task, which is resolved exception/worker-shutdown', async () => {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'worker-cli-'));
  const suffix = randomBytes(4).toString('hex');
  const workerType = `cli-${suffix}`;
  const workerId = `cli-w-${suffix}`;
  // The deployment the tests run against: `worker start` finds it as an operator gives it (the
  // TASKCLUSTER_* variables), or starts the embedded one when they are empty.
  const external = externalDeployment();
  const env = {
    ...process.env, WORKER_STATE_DIR: stateDir, WORKER_ID: workerId, WORKER_PROVISIONER_ID: 'test-prov', WORKER_TYPE: workerType,
    TASKCLUSTER_ROOT_URL: external?.rootUrl ?? '', TASKCLUSTER_CLIENT_ID: external?.credentials.clientId ?? '',
    TASKCLUSTER_ACCESS_TOKEN: external?.credentials.accessToken ?? '',
  };
  const child = spawn(path.join(repoRoot, 'bin/worker'), ['start'], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => { output += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { output += d.toString(); });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  try {
    const credentialsFile = path.join(stateDir, 'embedded', 'credentials.json');
    for (let i = 0; i < 600 && !((external || existsSync(credentialsFile)) && /worker started/.test(output)); i++) {
      assert.equal(child.exitCode, null, `bin/worker start exited early:\n${output}`);
      await sleep(50);
    }
    assert.match(output, /worker started/, output);
    const credentials = external
      ? { rootUrl: external.rootUrl, ...external.credentials }
      : JSON.parse(readFileSync(credentialsFile, 'utf8')) as { rootUrl: string; clientId: string; accessToken: string };
    const queue = new taskcluster.Queue({ rootUrl: credentials.rootUrl, credentials: { clientId: credentials.clientId, accessToken: credentials.accessToken } });
    const taskId = taskcluster.slugid();
    await queue.createTask(taskId, {
      taskQueueId: `test-prov/${workerType}`,
      created: new Date().toISOString(),
      deadline: taskcluster.fromNow('1 hour').toISOString(),
      metadata: { name: 'cli shutdown', description: 'SIGTERM test', owner: 'test@localhost.localdomain', source: 'https://localhost/test' },
      payload: { image: TASKENV_PASS, command: ['/bin/sh', '-c', 'echo working; sleep 60'], maxRunTime: 120 },
    });
    for (let i = 0; ; i++) {
      if ((await queue.status(taskId)).status.state === 'running') break;
      assert.ok(i < 600, `the task did not start:\n${output}`);
      await sleep(50);
    }
    await waitForContainer(taskId, workerId);

    child.kill('SIGTERM');
    const [code, signal] = await exited;
    assert.equal(signal, null, `killed by ${signal}:\n${output}`);
    assert.equal(code, 0, output);
    assert.deepEqual(await containersOf(taskId, workerId), []);

    // An embedded deployment stopped with the process; its state is on disk.
    const log = winston.createLogger({ silent: true });
    const embedded = external ? undefined : await startEmbedded({ stateDir: path.join(stateDir, 'embedded'), port: 0, log });
    try {
      const reader = embedded ? new taskcluster.Queue({ rootUrl: embedded.rootUrl, credentials: embedded.credentials }) : queue;
      const { status } = await reader.status(taskId);
      assert.equal(status.runs[0].state, 'exception');
      assert.equal(status.runs[0].reasonResolved, 'worker-shutdown');
      assert.equal(status.runs[1]?.state, 'pending');
      const listed = (await reader.listArtifacts(taskId, 0) as { artifacts: { name: string }[] }).artifacts.map((a) => a.name);
      assert.ok(listed.includes('public/logs/live_backing.log'), `artifacts: ${listed.join(', ')}`);
    } finally {
      await embedded?.close();
    }
  } finally {
    if (child.exitCode === null && child.signalCode === null) { child.kill('SIGKILL'); await exited; }
    for (const c of await engine.listOwnedContainers(workerId)) await engine.removeContainer(c.id);
    rmSync(stateDir, { recursive: true, force: true });
  }
});
