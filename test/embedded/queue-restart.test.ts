// The queue's state is durable: a deployment restarted on the same state directory keeps its
// tasks, runs, claims and workers, and claim credentials issued before still work.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startQueue, newTaskQueueId, slugid, taskDef, claimOne } from './queue-fixtures.ts';

test('restarting on the same state directory keeps tasks, runs and claims', async () => {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'queue-restart-'));
  try {
    const taskQueueId = newTaskQueueId();
    const running = slugid();
    const pending = slugid();
    const first = await startQueue({ claimTimeoutSeconds: 60 }, stateDir);
    await first.queue.createTask(running, taskDef(taskQueueId, { priority: 'high' }));
    await first.queue.createTask(pending, taskDef(taskQueueId));
    const claim = await claimOne(first.queue, taskQueueId);
    assert.equal(claim.status.taskId, running);
    const before = await first.queue.status(pending);
    await first.close();

    const second = await startQueue({ claimTimeoutSeconds: 60 }, stateDir);
    try {
      assert.deepEqual(await second.queue.status(pending), before);
      assert.equal((await second.queue.task(running)).priority, 'high');
      // the worker carries on with the credentials it was given before the restart
      const asWorker = second.client(claim.credentials);
      assert.equal((await asWorker.reclaimTask(running, 0)).status.state, 'running');
      assert.equal((await asWorker.reportCompleted(running, 0)).status.state, 'completed');
      assert.equal((await claimOne(second.queue, taskQueueId)).status.taskId, pending);
      const [provisionerId, workerType] = taskQueueId.split('/');
      const seen = await second.queue.getWorker(provisionerId, workerType, 'wg', 'w1');
      assert.equal(seen.recentTasks.length, 2);
    } finally {
      await second.close();
    }
  } finally {
    rmSync(stateDir, { recursive: true, force: true });
  }
});
