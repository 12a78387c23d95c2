// Images from a private registry, as a task owner meets them: the worker's registry
// credentials serve a task holding docker-worker:image:<name>; without that scope, with
// credentials the registry refuses, or with an image that does not exist, the task fails at
// once with a sentence saying what to change (and the pull is not retried in vain).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../lib/config/load.ts';
import { WorkerHarness } from '../support/worker.ts';
import { AUTH_REGISTRY, AUTH_REGISTRY_CREDENTIALS, AUTH_TASKENV_PASS, OPEN_REGISTRY } from '../support/registry.ts';

let good: WorkerHarness;
let bad: WorkerHarness;
before(async () => {
  [good, bad] = await Promise.all([
    WorkerHarness.start({ config: { capacity: 2, registries: { [AUTH_REGISTRY]: AUTH_REGISTRY_CREDENTIALS } } }),
    WorkerHarness.start({
      config: {
        capacity: 2, 'image.pullRetries': 3, 'image.pullBaseDelayMs': 100,
        registries: { [AUTH_REGISTRY]: { username: AUTH_REGISTRY_CREDENTIALS.username, password: 'wrong-password' } },
      },
    }),
  ]);
});
after(async () => { await Promise.all([good?.stop(), bad?.stop()]); });

const scope = `docker-worker:image:${AUTH_TASKENV_PASS}`;
const payload = { image: AUTH_TASKENV_PASS, command: ['taskhost-who', 'from', 'the private registry'], maxRunTime: 60 };

test('a private image is pulled with the worker\'s credentials when the task has docker-worker:image:<name>', async () => {
  const taskId = await good.submit(payload, { scopes: [scope] });
  const status = await good.waitForResolution(taskId);
  const log = await good.taskLog(taskId);
  assert.equal(status.state, 'completed', log);
  assert.match(log, new RegExp(`Pulling image ${AUTH_TASKENV_PASS.replace(/[.]/g, '\\.')}`));
  assert.match(log, /^from the private registry\r?$/m);
});

test('without docker-worker:image:<name> the credentials are not used: failed, naming the scope', async () => {
  const taskId = await good.submit(payload);
  const status = await good.waitForResolution(taskId);
  assert.equal(status.state, 'failed');
  assert.equal(status.runs.length, 1);
  const log = await good.taskLog(taskId);
  assert.match(log, /\[taskcluster:error\] Pulling docker image has failed\./);
  assert.ok(log.includes(`the task lacks the scope ${scope}`), log);
  assert.doesNotMatch(log, /=== Task Starting ===/);
});

test('credentials the registry refuses: failed with a message for the operator, no pull retries', async () => {
  const taskId = await bad.submit(payload, { scopes: [scope] });
  const status = await bad.waitForResolution(taskId);
  assert.equal(status.state, 'failed');
  assert.equal(status.runs.length, 1);
  const log = await bad.taskLog(taskId);
  assert.match(log, /\[taskcluster:error\] Pulling docker image has failed\./);
  assert.ok(log.includes(`the registry ${AUTH_REGISTRY} rejected the worker's credentials`), log);
  assert.equal(log.match(/Pulling image /g)?.length, 1, 'the pull was tried once');
  assert.doesNotMatch(log, /retrying in/);
});

test('an image that does not exist: failed with one clear sentence, no pull retries', async () => {
  const image = `${OPEN_REGISTRY}/no-such-image:latest`;
  const taskId = await bad.submit({ image, command: ['true'], maxRunTime: 60 });
  const status = await bad.waitForResolution(taskId);
  assert.equal(status.state, 'failed');
  assert.equal(status.runs.length, 1);
  const log = await bad.taskLog(taskId);
  assert.match(log, /\[taskcluster:error\] Pulling docker image has failed\.\nError: Image 127\.0\.0\.1:5480\/no-such-image:latest was not found in the registry 127\.0\.0\.1:5480/);
  assert.equal(log.match(/Pulling image /g)?.length, 1, 'the pull was tried once');
  assert.match(log, /Unsuccessful task run with exit code: -1/);
});

test('a worker config file can hold registry credentials for a host with dots and a port', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'worker-config-'));
  try {
    const file = path.join(dir, 'worker.yml');
    writeFileSync(file, `registries:\n  "${AUTH_REGISTRY}": {username: ${AUTH_REGISTRY_CREDENTIALS.username}, password: ${AUTH_REGISTRY_CREDENTIALS.password}}\n`);
    const config = loadConfig({ file, env: {} });
    assert.deepEqual(config.registries, { [AUTH_REGISTRY]: AUTH_REGISTRY_CREDENTIALS });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
