// The memory of loaded images on disk: last-use times (twice per task) are written at most once
// a second, or with the next other change; records are written at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LoadedImages } from '../../lib/images/loaded-images.ts';

const onDisk = (memory: LoadedImages) => existsSync(memory.file) ? JSON.parse(readFileSync(memory.file, 'utf8')) as { lastUsed: Record<string, number>; pulled: Record<string, string> } : undefined;

test('a use is written within a second, and at once with the next other change', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'loaded-images-'));
  try {
    const memory = LoadedImages.open(dir);
    memory.touch('sha256:a', 1000);
    memory.touch('sha256:a', 2000);
    assert.equal(onDisk(memory)?.lastUsed['sha256:a'], undefined, 'not written at every use');
    assert.equal(memory.lastUsed('sha256:a'), 2000);
    memory.recordPull('sha256:b', 'busybox:latest');
    assert.deepEqual(onDisk(memory)?.lastUsed, { 'sha256:a': 2000 }, 'written with the next change');
    memory.touch('sha256:b', 3000);
    await sleep(1300);
    assert.deepEqual(onDisk(memory)?.lastUsed, { 'sha256:a': 2000, 'sha256:b': 3000 }, 'written within a second');
    assert.equal(LoadedImages.open(dir).lastUsed('sha256:b'), 3000, 'a new process reads it');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
