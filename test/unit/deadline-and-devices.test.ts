// Small pure-ish helpers of the task run: a bounded wait (cleanup's deadline) and the check
// that a planned device exists on the host before its container is created.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { settleWithin } from '../../lib/task/deadline.ts';
import { missingDevices } from '../../lib/task/device-check.ts';

test('settleWithin: work that settles in time, fulfilled or rejected', async () => {
  assert.equal(await settleWithin(Promise.resolve(1), 1000), true);
  assert.equal(await settleWithin(Promise.reject(new Error('removal failed')), 1000), true);
});

test('settleWithin: work that never settles is given up', async () => {
  assert.equal(await settleWithin(new Promise(() => {}), 20), false);
});

const dir = mkdtempSync(path.join(os.tmpdir(), 'devices-'));
const file = path.join(dir, 'plain-file');
writeFileSync(file, 'x');

test('a present device: nothing to say', async () => {
  assert.deepEqual(await missingDevices([{ name: 'kvm', hostPath: '/dev/null', containerPath: '/dev/kvm', mount: 'device' }], 'p/w'), []);
  assert.deepEqual(await missingDevices([{ name: 'hostSharedMemory', hostPath: dir, containerPath: '/dev/shm', mount: 'bind' }], 'p/w'), []);
  assert.deepEqual(await missingDevices([{ name: 'loopbackAudio', hostPath: dir, containerPath: dir, mount: 'device' }], 'p/w'), [], 'a directory of devices (/dev/snd)');
});

test('a device missing on the host: one sentence naming the device and its path', async () => {
  const [problem, ...rest] = await missingDevices([{ name: 'kvm', hostPath: '/dev/no-such-kvm', containerPath: '/dev/kvm', mount: 'device' }], 'p/w');
  assert.deepEqual(rest, []);
  assert.equal(problem, 'payload.capabilities.devices.kvm is true and worker pool p/w is configured to provide the kvm device at /dev/no-such-kvm, but this host has nothing at /dev/no-such-kvm; run the task on a host that has the device, or remove it.');
});

test('a path of the wrong kind: a plain file is no device, and shared memory must be a directory', async () => {
  const problems = await missingDevices([
    { name: 'loopbackVideo', hostPath: file, containerPath: file, mount: 'device' },
    { name: 'hostSharedMemory', hostPath: file, containerPath: '/dev/shm', mount: 'bind' },
  ], 'p/w');
  assert.equal(problems.length, 2);
  assert.match(problems[0]!, /loopbackVideo .* is not a device on this host/);
  assert.match(problems[1]!, /hostSharedMemory .* is not a directory on this host/);
});
