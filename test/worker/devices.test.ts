// Devices a task asks for (capabilities.devices) on a worker configured to provide them: the
// container gets them when they exist on the host; when the configured path is missing, the
// task is refused before any container is created, with one sentence naming the device and
// the path (and nothing is created at that path).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WorkerHarness } from '../support/worker.ts';
import { TASKENV_PASS } from '../support/docker.ts';

const shm = mkdtempSync(path.join(os.tmpdir(), 'host-shm-'));
const missingShm = path.join(shm, 'not-there');
let present: WorkerHarness;
let absent: WorkerHarness;
before(async () => {
  [present, absent] = await Promise.all([
    WorkerHarness.start({ config: { 'devices.kvm.enabled': true, 'devices.kvm.path': '/dev/null', 'devices.hostSharedMemory.enabled': true, 'devices.hostSharedMemory.path': shm } }),
    WorkerHarness.start({ config: { 'devices.kvm.enabled': true, 'devices.kvm.path': '/dev/no-such-kvm', 'devices.hostSharedMemory.enabled': true, 'devices.hostSharedMemory.path': missingShm } }),
  ]);
});
after(async () => { await Promise.all([present?.stop(), absent?.stop()]); rmSync(shm, { recursive: true, force: true }); });

const scopes = ['docker-worker:capability:device:kvm', 'docker-worker:capability:device:hostSharedMemory'];

test('a device present on the host is attached: kvm (here /dev/null) appears as the character device /dev/kvm', async () => {
  const taskId = await present.submit({ image: TASKENV_PASS, command: ['/bin/sh', '-c', '[ -c /dev/kvm ] && echo kvm is a character device'], maxRunTime: 60, capabilities: { devices: { kvm: true } } }, { scopes });
  const status = await present.waitForResolution(taskId);
  const log = await present.taskLog(taskId);
  assert.equal(status.state, 'completed', log);
  assert.match(log, /^kvm is a character device\r?$/m);
});

test('hostSharedMemory binds the configured host directory at /dev/shm', async () => {
  const taskId = await present.submit({ image: TASKENV_PASS, command: ['/bin/sh', '-c', 'echo from the task > /dev/shm/marker'], maxRunTime: 60, capabilities: { devices: { hostSharedMemory: true } } }, { scopes });
  const status = await present.waitForResolution(taskId);
  assert.equal(status.state, 'completed', await present.taskLog(taskId));
  assert.equal(readFileSync(path.join(shm, 'marker'), 'utf8'), 'from the task\n');
});

test('a configured device missing on the host: exception/malformed-payload, one sentence naming it, no container', async () => {
  const taskId = await absent.submit({ image: TASKENV_PASS, command: ['echo', 'should not run'], maxRunTime: 60, capabilities: { devices: { kvm: true } } }, { scopes });
  const status = await absent.waitForResolution(taskId);
  assert.equal(status.state, 'exception');
  assert.equal(status.runs[0]!.reasonResolved, 'malformed-payload');
  assert.equal(status.runs.length, 1);
  const log = await absent.taskLog(taskId);
  assert.match(log, new RegExp(`\\[taskcluster:error\\] payload\\.capabilities\\.devices\\.kvm is true and worker pool ${absent.taskQueueId} is configured to provide the kvm device at /dev/no-such-kvm, but this host has nothing at /dev/no-such-kvm; run the task on a host that has the device, or remove it\\.`));
  assert.doesNotMatch(log, /=== Task Starting ===|Failure to properly start/);
  assert.equal((absent.events('task timings', taskId)[0]?.ms as Record<string, number>).containerCreated, undefined);
});

test('a missing hostSharedMemory directory is refused, and not created by the engine', async () => {
  const taskId = await absent.submit({ image: TASKENV_PASS, command: ['true'], maxRunTime: 60, capabilities: { devices: { hostSharedMemory: true } } }, { scopes });
  const status = await absent.waitForResolution(taskId);
  assert.equal(status.runs[0]!.reasonResolved, 'malformed-payload');
  assert.match(await absent.taskLog(taskId), /devices\.hostSharedMemory is true .* but this host has nothing at /);
  assert.equal(existsSync(missingShm), false);
});
