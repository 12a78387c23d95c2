// The configuration templates deploy/provision.sh installs are valid worker configurations:
// an unknown or mistyped key would stop the worker at its first boot on every instance.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { loadConfig } from '../../lib/config/load.ts';

const deploy = path.resolve(import.meta.dirname, '../../deploy');

test('deploy/config/local.yml is a valid configuration: the embedded deployment, state in /var/lib/docker-worker', () => {
  const config = loadConfig({ file: path.join(deploy, 'config/local.yml'), env: {} });
  assert.equal(config.rootUrl, '');
  assert.equal(config.stateDir, '/var/lib/docker-worker');
  assert.equal(config.devices.loopbackVideo.enabled, false);
});

test('deploy/config/aws.yml is a valid configuration offering the loopback devices the image loads', () => {
  const config = loadConfig({ file: path.join(deploy, 'config/aws.yml'), env: {} });
  assert.equal(config.stateDir, '/var/lib/docker-worker');
  assert.equal(config.liveLog.host, '0.0.0.0');
  assert.equal(config.devices.loopbackVideo.enabled, true);
  assert.equal(config.devices.loopbackAudio.enabled, true);
});

test("deploy/config/worker-runner.yml runs the package's bin/docker-worker, and its workerConfig is a valid configuration", () => {
  const runner = YAML.parse(readFileSync(path.join(deploy, 'config/worker-runner.yml'), 'utf8'));
  assert.equal(runner.worker.implementation, 'docker-worker');
  assert.equal(runner.worker.path, '/opt/docker-worker');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'deploy-config-'));
  try {
    const file = path.join(dir, 'worker.json');
    writeFileSync(file, JSON.stringify(runner.workerConfig));
    const config = loadConfig({ file, env: {} });
    assert.equal(config.stateDir, '/var/lib/docker-worker');
    assert.equal(config.devices.loopbackAudio.enabled, true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a template with a mistyped key is refused (what the tests above rely on)', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'deploy-config-'));
  try {
    const file = path.join(dir, 'worker.yml');
    writeFileSync(file, readFileSync(path.join(deploy, 'config/aws.yml'), 'utf8').replace('diskspaceThreshold', 'diskSpaceThreshold'));
    assert.throws(() => loadConfig({ file, env: {} }), /diskSpaceThreshold/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
