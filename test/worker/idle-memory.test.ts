// The idle worker hands back the heap memory glibc kept (lib/memory/allocator-trim.ts, with
// native/malloc-trim.node as `make deps` builds it): after its last task the worker asks for
// it, and says at debug level what came back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkerHarness } from '../support/worker.ts';
import { TASKENV_PASS } from '../support/docker.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('after its last task the worker hands back freed heap memory, and says what came back', async () => {
  const h = await WorkerHarness.start();
  try {
    assert.deepEqual(h.events('freed heap memory stays resident after work'), [], 'the addon loaded');
    const taskId = await h.submit({ image: TASKENV_PASS, command: ['/bin/sh', '-c', 'echo hello'], maxRunTime: 60 });
    const status = await h.waitForResolution(taskId);
    assert.equal(status.state, 'completed');
    const before = h.events('heap memory handed back').length;
    for (let i = 0; i < 150 && h.events('heap memory handed back').length === before; i++) await sleep(100);
    const trims = h.events('heap memory handed back').slice(before);
    assert.ok(trims.length >= 1, 'a trim within 15 s of the last task (the first comes 5 s after it)');
    const [trim] = trims;
    assert.equal(typeof trim!.released, 'boolean');
    for (const key of ['rssBeforeMb', 'rssAfterMb', 'ms'] as const) assert.ok(typeof trim![key] === 'number' && trim![key] >= 0, `${key}: ${String(trim![key])}`);
  } finally {
    await h.stop();
  }
});
