// shutdown.afterIdleSeconds: a worker with nothing to do stops by itself, but not while a
// task runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkerHarness } from '../support/worker.ts';
import { TASKENV_PASS } from '../support/docker.ts';

test('an idle worker stops after shutdown.afterIdleSeconds, not during a task', async () => {
  const h = await WorkerHarness.start({ config: { 'shutdown.afterIdleSeconds': 2 } });
  try {
    const taskId = await h.submit({ image: TASKENV_PASS, command: ['/bin/sh', '-c', 'sleep 3'], maxRunTime: 30 });
    assert.equal((await h.waitForResolution(taskId)).state, 'completed', 'the task outlived the idle timeout');
    const stopped = await Promise.race([h.worker!.stopped.then(() => true), new Promise((r) => setTimeout(() => r(false), 15_000))]);
    assert.equal(stopped, true, 'the worker stopped once idle');
    assert.equal(h.events('worker stopped')[0]?.reason, 'idle');
  } finally {
    await h.stop();
  }
});
