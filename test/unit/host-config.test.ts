// What a host hands the config: docker-worker's config shape translated to ours, layered over
// the defaults and under file / environment / flags; the runner protocol's lines; credentials
// that follow replacements.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { translateDockerWorkerConfig } from '../../lib/host/docker-worker-config.ts';
import { loadConfig, nestSettings } from '../../lib/config/load.ts';
import { parseRunnerLine, RunnerProtocol } from '../../lib/host/runner-protocol.ts';
import { credentialsOf } from '../../lib/host/worker-runner.ts';
import { WorkerCredentials } from '../../lib/queue/worker-credentials.ts';

test('worker-runner\'s docker-worker config becomes our settings; unknown keys are named, not fatal', () => {
  const { settings, ignored } = translateDockerWorkerConfig({
    rootUrl: 'https://tc.example.com', taskcluster: { clientId: 'c', accessToken: 't', certificate: { version: 1 } },
    workerId: 'i-1', workerGroup: 'us-east-1', provisionerId: 'p', workerType: 'w', capacity: 3,
    publicIp: '1.2.3.4', privateIp: '10.1.1.1', instanceType: 'm5.xlarge', instanceId: 'i-1', region: 'us-east-1', host: 'h.example.com',
    workerLocation: { cloud: 'aws', region: 'us-east-1' }, dockerConfig: { allowPrivileged: true },
    deviceManagement: { kvm: { enabled: true } }, shutdown: { enabled: true, afterIdleSeconds: 600 },
    ssl: { certificate: '/x' }, logging: { secureLiveLogging: true },
  });
  assert.deepEqual(settings, {
    rootUrl: 'https://tc.example.com', 'credentials.clientId': 'c', 'credentials.accessToken': 't', 'credentials.certificate': '{"version":1}',
    workerId: 'i-1', workerGroup: 'us-east-1', provisionerId: 'p', workerType: 'w', capacity: 3,
    'host.publicIp': '1.2.3.4', 'host.privateIp': '10.1.1.1', 'host.instanceType': 'm5.xlarge', 'host.instanceId': 'i-1', 'host.region': 'us-east-1',
    'host.publicHostname': 'h.example.com', 'host.workerLocation': '{"cloud":"aws","region":"us-east-1"}', allowPrivileged: true,
    'devices.kvm.enabled': true, 'shutdown.afterIdleSeconds': 600,
  });
  assert.deepEqual(ignored, ['logging.secureLiveLogging', 'ssl.certificate']);
  assert.deepEqual(translateDockerWorkerConfig({ shutdown: { enabled: false, afterIdleSeconds: 600 } }).settings, { 'shutdown.afterIdleSeconds': 0 }, 'shutdown.enabled false: never');
  assert.deepEqual(translateDockerWorkerConfig({ host: { spotPollSeconds: 2 }, 'task.cancelPollSeconds': 1 }).settings, { 'host.spotPollSeconds': 2, 'task.cancelPollSeconds': 1 }, 'our own keys, nested or dotted');
});

test('host settings sit over the defaults and under the file, the environment and the flags', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'host-config-'));
  const file = path.join(dir, 'c.yml');
  writeFileSync(file, 'workerGroup: from-file\n');
  const host = { capacity: 2, workerGroup: 'from-host', workerType: 'from-host', provisionerId: 'from-host', 'host.region': 'eu-west-1' };
  const c = loadConfig({ host, file, env: { WORKER_TYPE: 'from-env' }, overrides: { provisionerId: 'from-flag' } });
  assert.equal(c.capacity, 2);
  assert.equal(c.host.region, 'eu-west-1');
  assert.equal(c.workerGroup, 'from-file');
  assert.equal(c.workerType, 'from-env');
  assert.equal(c.provisionerId, 'from-flag');
  assert.throws(() => loadConfig({ host: { capacity: 'many' }, env: {} }), /capacity: must be a whole number/);
  assert.deepEqual(nestSettings({ 'a.b': 1, c: 2 }), { a: { b: 1 }, c: 2 });
});

test('runner protocol lines: ~{json} with a type, anything else ignored', () => {
  assert.deepEqual(parseRunnerLine('~{"type":"welcome","capabilities":["x"]}'), { type: 'welcome', capabilities: ['x'] });
  for (const line of ['hello', '~{"no":"type"}', '~{broken', '{"type":"x"}', '~[1]']) assert.equal(parseRunnerLine(line), undefined, line);
  assert.deepEqual(credentialsOf({ type: 'new-credentials', 'client-id': 'a', 'access-token': 'b' }), { clientId: 'a', accessToken: 'b' });
  assert.deepEqual(credentialsOf({ type: 'new-credentials', 'client-id': 'a', 'access-token': 'b', certificate: '{"v":1}' }), { clientId: 'a', accessToken: 'b', certificate: '{"v":1}' });
  assert.equal(credentialsOf({ type: 'new-credentials', 'client-id': 'a' }), undefined);
});

test('the protocol answers welcome with the shared capabilities and passes on only messages of those', async () => {
  const input = new PassThrough();
  const output = new PassThrough();
  const written: string[] = [];
  output.on('data', (d: Buffer) => written.push(d.toString()));
  const p = new RunnerProtocol(input, output, ['graceful-termination', 'shutdown', 'new-credentials']);
  const got: string[] = [];
  p.on('graceful-termination', (m) => got.push(`gt:${m['finish-tasks']}`));
  p.on('new-credentials', () => got.push('nc'));
  input.write('~{"type":"graceful-termination","finish-tasks":true}\n'); // before welcome: no capabilities yet
  input.write('not a message\n~{"type":"welcome","capabilities":["graceful-termination","shutdown","log"]}\n');
  await p.initialized;
  input.write('~{"type":"new-credentials","client-id":"a","access-token":"b"}\n~{"type":"graceful-termination","finish-tasks":false}\n');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(got, ['gt:false'], 'new-credentials was not offered by this runner');
  assert.equal(written[0], '~{"type":"hello","capabilities":["graceful-termination","shutdown"]}\n');
  assert.equal(p.send({ type: 'shutdown' }), true);
  assert.equal(p.send({ type: 'new-credentials' }), false);
  assert.equal(written.at(-1), '~{"type":"shutdown"}\n');
  p.close();
});

test('a client that follows the worker credentials is rebuilt once per replacement, with the certificate', () => {
  const creds = new WorkerCredentials({ clientId: 'a', accessToken: 'x' });
  const built: string[] = [];
  const client = creds.client((c) => { built.push(`${c.clientId}${c.certificate ? '+cert' : ''}`); return { who: () => c.clientId }; });
  assert.equal(client.who(), 'a');
  assert.equal(client.who(), 'a');
  creds.replace({ clientId: 'b', accessToken: 'y', certificate: '{}' });
  assert.equal(client.who(), 'b');
  creds.replace({ clientId: 'c', accessToken: 'z' });
  assert.equal(client.who(), 'c');
  assert.deepEqual(built, ['a', 'b+cert', 'c']);
  assert.throws(() => creds.replace({ clientId: '', accessToken: 'q' }), /clientId/);
});
