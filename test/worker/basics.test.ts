// What a task owner sees for ordinary tasks: the log header and footer, exit codes mapped
// to completed/failed, env with the reserved variables, and a command that does not exist.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { WorkerHarness } from '../support/worker.ts';
import { TASKENV_PASS, TASKENV_FAIL } from '../support/docker.ts';

let h: WorkerHarness;
before(async () => { h = await WorkerHarness.start(); });
after(async () => { await h?.stop(); });

test('a successful task completes, with the docker-worker header and footer in its log', async () => {
  const taskId = await h.submit({ image: TASKENV_PASS, command: ['taskhost-who', 'hello', 'world'], maxRunTime: 60 });
  const status = await h.waitForResolution(taskId);
  assert.equal(status.state, 'completed');
  const log = await h.taskLog(taskId);
  assert.match(log, new RegExp(`^\\[taskcluster [0-9-]+ [0-9:.]+Z\\] Task ID: ${taskId}$`, 'm'));
  for (const field of ['Worker ID', 'Worker Group', 'Worker Node Type', 'Worker Pool', 'Worker Version', 'Public IP', 'Hostname']) {
    assert.match(log, new RegExp(`\\] ${field}: \\S`), `header has ${field}`);
  }
  assert.match(log, /\] Worker Pool: test-prov\/wt-/);
  assert.match(log, /=== Task Starting ===/);
  assert.match(log, /^hello world\r?$/m);
  assert.match(log, /=== Task Finished ===/);
  assert.match(log, /Successful task run with exit code: 0 completed in [0-9.]+ seconds/);
  assert.deepEqual(h.events('claimed task', taskId).length, 1);
  assert.equal(h.events('task resolved', taskId)[0].taskState, 'completed');
});

test('a non-zero exit fails the task and the footer gives the exit code', async () => {
  const taskId = await h.submit({ image: TASKENV_FAIL, command: ['taskhost-who', 'oops'], maxRunTime: 60 });
  const status = await h.waitForResolution(taskId);
  assert.equal(status.state, 'failed');
  const log = await h.taskLog(taskId);
  assert.match(log, /Unsuccessful task run with exit code: 1 completed in/);
});

test('payload env is set, reserved variables are set and cannot be overridden', async () => {
  const taskId = await h.submit({
    image: TASKENV_PASS,
    command: ['/bin/sh', '-c', 'env | sort'],
    env: { MY_VAR: 'my value', TASK_ID: 'forged', RUN_ID: '99', TASKCLUSTER_WORKER_TYPE: 'forged' },
    maxRunTime: 60,
  });
  assert.equal((await h.waitForResolution(taskId)).state, 'completed');
  const log = await h.taskLog(taskId);
  assert.match(log, /^MY_VAR=my value\r?$/m);
  assert.match(log, new RegExp(`^TASK_ID=${taskId}\\r?$`, 'm'));
  assert.match(log, /^RUN_ID=0\r?$/m);
  assert.match(log, new RegExp(`^TASKCLUSTER_WORKER_TYPE=${h.config.workerType}\\r?$`, 'm'));
  assert.match(log, new RegExp(`^TASKCLUSTER_WORKER_POOL=${h.taskQueueId}\\r?$`, 'm'));
  assert.match(log, /^TASKCLUSTER_WORKER_GROUP=test-group\r?$/m);
  assert.match(log, new RegExp(`^TASKCLUSTER_ROOT_URL=${h.rootUrl}\\r?$`, 'm'));
  assert.match(log, /^TASKCLUSTER_INSTANCE_TYPE=\S+/m);
  assert.match(log, /^TASKCLUSTER_PUBLIC_IP=\S+/m);
  assert.doesNotMatch(log, /forged/);
});

test('a command that does not exist fails the task with a readable error', async () => {
  const taskId = await h.submit({ image: TASKENV_PASS, command: ['/no/such/command'], maxRunTime: 60 });
  const status = await h.waitForResolution(taskId);
  assert.equal(status.state, 'failed');
  const log = await h.taskLog(taskId);
  assert.match(log, /\[taskcluster:error\] Failure to properly start execution environment\./);
  assert.match(log, /no such file or directory|not found/i);
  assert.match(log, /Unsuccessful task run with exit code: -1/);
});

test('a 1 MB env value fails the task with a line naming the variable and Linux\'s limit, before any container exists', async () => {
  const taskId = await h.submit({ image: TASKENV_PASS, command: ['/bin/sh', '-c', 'echo started'], env: { HUGE: 'x'.repeat(1024 * 1024) }, maxRunTime: 60 });
  const status = await h.waitForResolution(taskId);
  assert.equal(status.state, 'failed');
  const log = await h.taskLog(taskId);
  assert.match(log, /\[taskcluster:error\] Failure to properly start execution environment\./);
  assert.match(log, /The environment variable HUGE is 1,048,582 bytes \(as NAME=value\); Linux starts a command with at most 131,072 bytes per variable/);
  assert.doesNotMatch(log, /^started/m);
  assert.doesNotMatch(log, /argument list too long/);
});
