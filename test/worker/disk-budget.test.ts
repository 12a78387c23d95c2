// The disk budget as an operator sees it: a worker below its free-space threshold does not
// claim, says why in its log, and alerts the operator.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkerHarness } from '../support/worker.ts';
import { TASKENV_PASS } from '../support/docker.ts';

test('below the disk threshold the worker does not claim and says why', async () => {
  const h = await WorkerHarness.start({ config: { diskspaceThreshold: 1e18 } });
  try {
    const taskId = await h.submit({ image: TASKENV_PASS, command: ['true'], maxRunTime: 30 });
    for (let i = 0; i < 50 && h.events('not claiming').length === 0; i++) await sleep(100);
    await sleep(1000);
    const { status } = await h.queue.status(taskId);
    assert.equal(status.state, 'pending', 'the task was not claimed');
    assert.equal(h.events('claimed task').length, 0);
    const refusal = h.events('not claiming')[0];
    assert.match(String(refusal?.reason), /^diskspace threshold reached: .* free on .*; .* needed/);
    assert.ok(h.events('[alert-operator] diskspace threshold reached').length >= 1);
  } finally {
    await h.stop();
  }
});
