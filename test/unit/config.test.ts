// Configuration layering and errors: defaults < file < environment < flags, and a bad or
// unknown key is named in the error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, ConfigError } from '../../lib/config/load.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'config-test-'));
const file = (name: string, text: string) => { const p = path.join(dir, name); writeFileSync(p, text); return p; };

test('defaults work on a fresh host', () => {
  const c = loadConfig({ env: {} });
  assert.equal(c.capacity, 1);
  assert.equal(c.rootUrl, '');
  assert.equal(c.devices.kvm.enabled, false);
  assert.deepEqual(c.registries, {});
});

test('file < environment < overrides', () => {
  const f = file('layers.yml', 'capacity: 2\nworkerType: from-file\nprovisionerId: file-prov\n');
  const c = loadConfig({ file: f, env: { WORKER_TYPE: 'from-env', WORKER_CAPACITY: '3' }, overrides: { capacity: 4 } });
  assert.equal(c.provisionerId, 'file-prov');
  assert.equal(c.workerType, 'from-env');
  assert.equal(c.capacity, 4);
});

test('registry credentials keyed by hosts with dots and ports load from a file and from the environment', () => {
  const f = file('registries.yml', 'registries:\n  "127.0.0.1:5481":\n    username: u\n    password: p\n  registry.example.com/team:\n    username: a\n    password: b\n');
  assert.deepEqual(loadConfig({ file: f, env: {} }).registries, {
    '127.0.0.1:5481': { username: 'u', password: 'p' }, 'registry.example.com/team': { username: 'a', password: 'b' },
  });
  const fromEnv = loadConfig({ env: { WORKER_REGISTRIES: '{"ghcr.io":{"username":"x","password":"y"}}' } });
  assert.deepEqual(fromEnv.registries, { 'ghcr.io': { username: 'x', password: 'y' } });
  // The same order as every other key: host < file < environment.
  const layered = loadConfig({ file: f, host: { registries: { 'host.example': { username: 'h', password: 'h' } } }, env: { WORKER_REGISTRIES: '{"ghcr.io":{"username":"x","password":"y"}}' } });
  assert.deepEqual(layered.registries, { 'ghcr.io': { username: 'x', password: 'y' } });
  assert.deepEqual(loadConfig({ file: f, host: { registries: { 'host.example': { username: 'h', password: 'h' } } }, env: {} }).registries['127.0.0.1:5481'], { username: 'u', password: 'p' });
});

test('errors name the bad key', () => {
  assert.throws(() => loadConfig({ env: {}, overrides: { capcity: 1 } }), (e: Error) => e instanceof ConfigError && /capcity/.test(e.message));
  assert.throws(() => loadConfig({ env: {}, overrides: { capacity: -1 } }), /capacity/);
  for (const key of ['capacity', 'embedded.claimTimeoutSeconds']) {
    for (const bad of [0, 1.5]) {
      assert.throws(() => loadConfig({ env: {}, overrides: { [key]: bad } }), (e: Error) => e instanceof ConfigError && e.message.includes(key) && /at least 1/.test(e.message), `${key}: ${bad}`);
    }
  }
  assert.equal(loadConfig({ env: { WORKER_CAPACITY: '3' } }).capacity, 3);
  assert.throws(() => loadConfig({ file: file('unknown.json', '{"nope": 1}'), env: {} }), /nope/);
  assert.throws(() => loadConfig({ file: file('list.json', '[1,2]'), env: {} }), /must hold an object/);
  assert.throws(() => loadConfig({ file: file('bad-reg.json', '{"registries": {"x": {"username": 1}}}'), env: {} }), /registries: entry "x"/);
  assert.throws(() => loadConfig({ file: path.join(dir, 'missing.yml'), env: {} }), /cannot read config file/);
});

test('allowDisableSeccomp is off by default and can be turned on (file, environment)', () => {
  assert.equal(loadConfig({ env: {} }).allowDisableSeccomp, false);
  assert.equal(loadConfig({ env: { WORKER_ALLOW_DISABLE_SECCOMP: 'true' } }).allowDisableSeccomp, true);
  assert.equal(loadConfig({ file: file('seccomp.yml', 'allowDisableSeccomp: true\n'), env: {} }).allowDisableSeccomp, true);
});

test('the task log\'s default name and the worker location reach the plan', async () => {
  const { workerSettings } = await import('../../lib/worker.ts');
  const { planTask } = await import('../../lib/task/plan.ts');
  const c = loadConfig({ env: { WORKER_LOCATION: '{"cloud":"test"}' }, overrides: { 'task.defaultLogName': 'public/logs/worker.log' } });
  const task = { provisionerId: 'p', workerType: 'w', created: '2030-01-01T00:00:00.000Z', deadline: '2030-01-02T00:00:00.000Z', scopes: [], payload: {} };
  const plan = planTask({ taskId: 't', runId: 0, task, payload: { image: 'busybox', maxRunTime: 1 }, claim: { takenUntil: task.deadline }, worker: workerSettings(c, 'https://tc.example.com') });
  assert.equal(plan.logName, 'public/logs/worker.log');
  assert.equal(plan.backingLogName, 'public/logs/worker_backing.log');
  assert.ok(plan.create.Env!.includes('TASKCLUSTER_WORKER_LOCATION={"cloud":"test"}'));
  assert.equal(loadConfig({ env: {} }).host.workerLocation, '', 'not set unless configured');
});

test('sidecars and relengAPI settings load from a file; a bad sidecar entry is named', () => {
  const f = file('sidecars.yml', [
    'sidecars:', '  balrogVPNProxy:', '    image: balrog-vpn:1', '    env: { VPN: "x" }',
    '  mine:', '    image: mine:2', '    command: [serve]', '    readiness: { port: 8080, status: 200 }',
    'relengAPI:', '  url: https://relengapi.example.com', '  token: secret',
  ].join('\n'));
  const c = loadConfig({ file: f, env: {} });
  assert.deepEqual(c.sidecars, { balrogVPNProxy: { image: 'balrog-vpn:1', env: { VPN: 'x' } }, mine: { image: 'mine:2', command: ['serve'], readiness: { port: 8080, status: 200 } } });
  assert.deepEqual(c.relengAPI, { url: 'https://relengapi.example.com', token: 'secret' });
  assert.throws(() => loadConfig({ env: {}, overrides: { sidecars: { balrogVPNProxy: { env: {} } } } }), (err: Error) =>
    err instanceof ConfigError && /sidecars\.balrogVPNProxy: "image" \(a local image\) is required/.test(err.message));
});
