// What a task owner sees when time runs out or someone steps in: maxRunTime kills the task
// (its artifacts and log still arrive), cancelTask stops it quickly without the worker
// resolving it again, long tasks keep their claim through reclaims, and onExitStatus.retry
// turns chosen exit codes into a retry.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import taskcluster from 'taskcluster-client';
import { WorkerHarness } from '../support/worker.ts';
import { TASKENV_PASS, testEngine } from '../support/docker.ts';

let h: WorkerHarness;
before(async () => { h = await WorkerHarness.start({ config: { capacity: 4 } }); });
after(async () => { await h?.stop(); });

const engine = testEngine();

/** Reads the live log until it matches (the task is running and got that far). */
async function untilLiveLogHas(taskId: string, pattern: RegExp, harness: WorkerHarness = h): Promise<void> {
  await harness.waitForRunning(taskId);
  const url = harness.queue.buildSignedUrl(harness.queue.getArtifact, taskId, 0, 'public/logs/live.log') as string;
  for (let i = 0; i < 200; i++) {
    const res = await fetch(url);
    if (res.ok && res.body) {
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let text = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
        if (pattern.test(text)) { await reader.cancel(); return; }
      }
    } else await res.body?.cancel();
    await sleep(100);
  }
  throw new Error(`the live log of ${taskId} never matched ${pattern}`);
}

async function containersOf(taskId: string, workerId: string) {
  return (await engine.listOwnedContainers(workerId)).filter((c) => c.labels['taskcluster.task-id'] === taskId);
}

test('maxRunTime: a task running too long is killed and failed; its artifacts and log are still uploaded', async () => {
  const taskId = await h.submit({
    image: TASKENV_PASS,
    command: ['/bin/sh', '-c', 'echo started; echo partial result > /tmp/result.txt; sleep 60; echo never'],
    maxRunTime: 3,
    artifacts: { 'public/result.txt': { type: 'file', path: '/tmp/result.txt' } },
  });
  const status = await h.waitForResolution(taskId, 60_000);
  assert.equal(status.state, 'failed');
  const log = await h.taskLog(taskId);
  assert.match(log, /^\[taskcluster:error\] Task timeout after 3 seconds\. Force killing container\.$/m);
  assert.match(log, /^started\r?$/m);
  assert.doesNotMatch(log, /^never/m);
  assert.match(log, /Unsuccessful task run with exit code: \S+ completed in/);
  const artifact = await h.artifact(taskId, 0, 'public/result.txt');
  assert.equal(artifact.status, 200);
  assert.equal(artifact.text, 'partial result\n');
  assert.deepEqual(await containersOf(taskId, h.config.workerId), []);
});

test('cancelTask during a run: the container is killed, the log says so, the run stays exception/canceled', async () => {
  const taskId = await h.submit({
    image: TASKENV_PASS,
    command: ['/bin/sh', '-c', 'echo sleeping; sleep 60; echo woke up'],
    maxRunTime: 120,
  });
  await h.waitForRunning(taskId);
  // Wait until the container is actually running and has printed its first line (a cancel
  // before the start stops the task before it runs: a test of its own).
  await untilLiveLogHas(taskId, /^sleeping\r?$/m);
  const cancelledAt = Date.now();
  await h.queue.cancelTask(taskId);
  // The worker notices (status poll every task.cancelPollSeconds = 1), kills the container
  // and says it is done with the task: long before the 60 s sleep would have ended.
  for (;;) {
    if (h.events('task resolved', taskId).length > 0) break;
    assert.ok(Date.now() - cancelledAt < 30_000, 'the worker did not stop the cancelled task');
    await sleep(100);
  }
  assert.equal(h.events('task resolved', taskId)[0].taskState, 'cancelled');
  assert.deepEqual(await containersOf(taskId, h.config.workerId), []);
  const { status } = await h.queue.status(taskId);
  assert.equal(status.state, 'exception');
  assert.equal(status.runs.length, 1);
  assert.equal(status.runs[0].state, 'exception');
  assert.equal(status.runs[0].reasonResolved, 'canceled');
  assert.equal(h.events('task already resolved by the queue', taskId).length, 0, 'the worker tried to resolve the cancelled run again');
  // The log is uploaded (the queue accepts artifacts of a run resolved exception for a while),
  // so it outlives the worker's live log server.
  const artifacts = Object.fromEntries((await h.listArtifacts(taskId)).map((a) => [a.name, a.storageType]));
  assert.equal(artifacts['public/logs/live.log'], 'link');
  assert.ok(artifacts['public/logs/live_backing.log'], `artifacts: ${JSON.stringify(artifacts)}`);
  const log = await h.taskLog(taskId);
  assert.match(log, /^sleeping\r?$/m);
  assert.match(log, /\[taskcluster:error\] Task was canceled by another entity\./);
  assert.doesNotMatch(log, /woke up/);
});

test('deadline passing during a run: the container is stopped and the log says the deadline was exceeded', async () => {
  const taskId = await h.submit(
    { image: TASKENV_PASS, command: ['/bin/sh', '-c', 'echo sleeping; sleep 60; echo woke up'], maxRunTime: 120 },
    { deadline: taskcluster.fromNow('4 seconds').toISOString() },
  );
  // The embedded queue acts on a deadline within a second, the real one within about a minute.
  const status = await h.waitForResolution(taskId, h.deployment.kind === 'embedded' ? 60_000 : 180_000);
  assert.equal(status.state, 'exception');
  assert.equal(status.runs[0].reasonResolved, 'deadline-exceeded');
  for (let i = 0; i < 300 && h.events('task resolved', taskId).length === 0; i++) await sleep(100);
  assert.equal(h.events('task resolved', taskId)[0]?.taskState, 'cancelled', 'the worker stopped the task');
  assert.deepEqual(await containersOf(taskId, h.config.workerId), []);
  const log = await h.taskLog(taskId);
  assert.match(log, /^sleeping\r?$/m);
  assert.match(log, /\[taskcluster:error\] Task deadline exceeded/);
  assert.doesNotMatch(log, /canceled by another entity/);
  assert.doesNotMatch(log, /woke up/);
});

test('onExitStatus.retry: a listed exit code resolves exception/intermittent-task and the task runs again', async () => {
  const taskId = await h.submit({
    image: TASKENV_PASS,
    command: ['/bin/sh', '-c', 'echo "run $RUN_ID"; if [ "$RUN_ID" = 0 ]; then exit 36; fi; exit 0'],
    maxRunTime: 60,
    onExitStatus: { retry: [36] },
  });
  const run0 = await h.waitForRun(taskId, 0);
  assert.equal(run0.state, 'exception');
  assert.equal(run0.reasonResolved, 'intermittent-task');
  const status = await h.waitForResolution(taskId);
  assert.equal(status.runs.length, 2);
  assert.equal((status.runs[1] as { reasonCreated?: string }).reasonCreated, 'task-retry');
  assert.equal(status.state, 'completed');
  assert.match(await h.taskLog(taskId, 0), /Unsuccessful task run with exit code: 36/);
  assert.match(await h.taskLog(taskId, 1), /^run 1\r?$/m);
});

test('onExitStatus.retry: an exit code not listed fails the task, with no new run', async () => {
  const taskId = await h.submit({
    image: TASKENV_PASS,
    command: ['/bin/sh', '-c', 'exit 3'],
    maxRunTime: 60,
    onExitStatus: { retry: [36] },
  });
  const status = await h.waitForResolution(taskId);
  assert.equal(status.state, 'failed');
  assert.equal(status.runs.length, 1);
  assert.match(await h.taskLog(taskId), /Unsuccessful task run with exit code: 3 /);
});

test('reclaims: a task longer than its claim is reclaimed, completes, and uploads artifacts with fresh credentials', async () => {
  const r = await WorkerHarness.start({ claimTimeoutSeconds: 4, config: { 'task.reclaimMarginSeconds': 1 } });
  try {
    // Longer than two claims of this deployment, so the upload needs the reclaimed credentials.
    const seconds = Math.max(10, Math.ceil(2.5 * r.deployment.claimTimeoutSeconds));
    const taskId = await r.submit({
      image: TASKENV_PASS,
      command: ['/bin/sh', '-c', `sleep ${seconds}; echo done late > /tmp/late.txt; echo finished`],
      maxRunTime: 60,
      artifacts: { 'public/late.txt': { type: 'file', path: '/tmp/late.txt' } },
    });
    const status = await r.waitForResolution(taskId, 60_000 + seconds * 1000);
    assert.equal(status.state, 'completed', `runs: ${JSON.stringify(status.runs)}`);
    assert.equal(status.runs.length, 1);
    assert.ok(r.events('reclaimed task', taskId).length >= 2, `reclaims: ${r.events('reclaimed task', taskId).length}`);
    const artifact = await r.artifact(taskId, 0, 'public/late.txt');
    assert.equal(artifact.status, 200);
    assert.equal(artifact.text, 'done late\n');
    assert.match(await r.taskLog(taskId), /^finished\r?$/m);
  } finally {
    await r.stop();
  }
});

test('reclaims: a reclaim margin longer than the claim (60 s against 4 s) reclaims a few times, not in a loop', async () => {
  const r = await WorkerHarness.start({ claimTimeoutSeconds: 4, config: { 'task.reclaimMarginSeconds': 60 } });
  try {
    const started = Date.now();
    const length = Math.max(6, Math.ceil(1.5 * r.deployment.claimTimeoutSeconds));
    const taskId = await r.submit({ image: TASKENV_PASS, command: ['/bin/sh', '-c', `sleep ${length}`], maxRunTime: 120 });
    const status = await r.waitForResolution(taskId, 60_000 + length * 1000);
    const seconds = (Date.now() - started) / 1000;
    assert.equal(status.state, 'completed', `runs: ${JSON.stringify(status.runs)}`);
    const reclaims = r.events('reclaimed task', taskId).length;
    // A task 1.5 claims long needs 2 reclaims; a reclaim loop makes hundreds a second.
    assert.ok(reclaims >= 2 && reclaims <= 2 * seconds + 2, `the worker reclaimed ${reclaims} times in ${seconds} s`);
  } finally {
    await r.stop();
  }
});
