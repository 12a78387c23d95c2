// --host aws against a fake instance metadata service on loopback (never a real metadata
// address): IMDSv2 tokens, 401 without one, missing paths, slow answers; the identity and
// config learned from metadata and from user-data in each form deployments used.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { InstanceMetadata } from '../../lib/host/instance-metadata.ts';
import { AwsHost, AWS_IDLE_SECONDS, userDataSettings } from '../../lib/host/aws.ts';
import { loadConfig, type WorkerConfig } from '../../lib/config/load.ts';
import { FakeImds } from '../support/fake-imds.ts';

const fakes: FakeImds[] = [];
after(async () => { for (const f of fakes) await f.close(); });
async function imds(values: Record<string, FakeImds['values'] extends Map<string, infer V> ? V : never>): Promise<FakeImds> {
  const f = await FakeImds.start(values);
  fakes.push(f);
  return f;
}
const configFor = (f: FakeImds): WorkerConfig => loadConfig({ env: {}, overrides: { 'host.metadataUrl': f.url } });

test('every read carries an IMDSv2 token; without one the service answers 401', async () => {
  const f = await imds(FakeImds.instance());
  const md = new InstanceMetadata({ url: f.url });
  assert.equal(await md.get('latest/meta-data/instance-id'), 'i-0abc1234def567890');
  const gets = f.requests.filter((r) => r.method === 'GET');
  assert.ok(gets.length >= 1 && gets.every((r) => r.token && r.status === 200), JSON.stringify(f.requests));
  assert.ok(f.requests.some((r) => r.method === 'PUT' && r.path === '/latest/api/token'));
  const bare = await fetch(`${f.url}/latest/meta-data/instance-id`);
  assert.equal(bare.status, 401, 'the fake is as strict as IMDSv2');
});

test('a path the service has no value for is undefined (404), not an error', async () => {
  const f = await imds(FakeImds.instance());
  const md = new InstanceMetadata({ url: f.url });
  assert.equal(await md.get('latest/meta-data/spot/instance-action'), undefined);
  assert.equal(await md.get('latest/user-data'), undefined);
});

test('a slow answer within the timeout is read; one past it fails after the retries', async () => {
  const f = await imds({ '/latest/meta-data/instance-id': { delayMs: 300, value: 'i-slow' }, '/latest/meta-data/instance-type': { delayMs: 5000, value: 'never' } });
  const md = new InstanceMetadata({ url: f.url, timeoutMs: 1000, retries: 1 });
  assert.equal(await md.get('latest/meta-data/instance-id'), 'i-slow');
  await assert.rejects(md.get('latest/meta-data/instance-type'));
  assert.equal(f.requests.filter((r) => r.path === '/latest/meta-data/instance-type').length, 0, 'no answer was ever given');
});

test('identity from the metadata: instance id is the workerId, the zone\'s region the workerGroup; 15 minutes idle by default', async () => {
  const f = await imds(FakeImds.instance());
  const host = new AwsHost(() => configFor(f));
  const found = await host.configure();
  assert.deepEqual(found.settings, {
    workerId: 'i-0abc1234def567890', 'host.instanceId': 'i-0abc1234def567890', workerGroup: 'us-east-1', 'host.region': 'us-east-1',
    'host.instanceType': 'c5.2xlarge', 'host.publicIp': '203.0.113.9', 'host.privateIp': '172.31.5.9',
    'host.publicHostname': 'ec2-203-0-113-9.compute-1.amazonaws.com', 'shutdown.afterIdleSeconds': AWS_IDLE_SECONDS,
    'host.workerLocation': '{"cloud":"aws","region":"us-east-1","availabilityZone":"us-east-1b"}',
  });
  assert.equal(found.source, 'EC2 instance metadata and no user-data');
  const config = loadConfig({ env: {}, host: found.settings });
  assert.equal(config.workerId, 'i-0abc1234def567890');
  await host.close();
});

test('an instance without a public IP, or with a path that does not answer, still starts; no instance-id is an error', async () => {
  const values = FakeImds.instance();
  delete values['/latest/meta-data/public-ipv4'];
  values['/latest/meta-data/public-hostname'] = { delayMs: 10_000, value: 'x' };
  const f = await imds(values);
  const found = await new AwsHost(() => loadConfig({ env: {}, overrides: { 'host.metadataUrl': f.url } })).configure();
  assert.equal(found.settings['host.publicIp'], undefined);
  assert.match(found.source, /no answer for public-hostname/);
  const empty = await imds({});
  await assert.rejects(new AwsHost(() => configFor(empty)).configure(), /has no instance-id: is this an EC2 instance\?/);
});

test('aws-provisioner user-data: pool and capacity from it, data merged as a docker-worker config', async () => {
  const f = await imds(FakeImds.instance({
    provisionerId: 'aws-provisioner-v1', workerType: 'gecko-t-linux', capacity: 4, securityToken: 'secret-token', provisionerBaseUrl: 'https://aws-provisioner.taskcluster.net/v1',
    data: { dockerConfig: { allowPrivileged: true }, shutdown: { afterIdleSeconds: 120 }, ssl: {} },
  }));
  const found = await new AwsHost(() => configFor(f)).configure();
  assert.equal(found.settings.provisionerId, 'aws-provisioner-v1');
  assert.equal(found.settings.workerType, 'gecko-t-linux');
  assert.equal(found.settings.capacity, 4);
  assert.equal(found.settings.allowPrivileged, true);
  assert.equal(found.settings['shutdown.afterIdleSeconds'], 120, 'user-data wins over the aws default');
  assert.equal(found.settings.workerId, 'i-0abc1234def567890');
  assert.equal(found.source, 'EC2 instance metadata and aws-provisioner user-data');
  assert.deepEqual(found.ignored, ['provisionerBaseUrl', 'securityToken', 'data.ssl']);
  assert.ok(!JSON.stringify(found).includes('secret-token'), 'the token is named, never shown');
});

test('worker-manager and plain user-data forms', () => {
  const wm = userDataSettings(JSON.stringify({ workerPoolId: 'proj/linux', providerId: 'aws', workerGroup: 'us-west-1', rootUrl: 'https://tc.example.com', workerConfig: { capacity: 2 } }));
  assert.equal(wm.form, 'worker-manager user-data');
  assert.deepEqual(wm.settings, { capacity: 2, provisionerId: 'proj', workerType: 'linux', workerGroup: 'us-west-1', rootUrl: 'https://tc.example.com' });
  assert.deepEqual(wm.ignored, ['providerId']);
  const plain = userDataSettings(JSON.stringify({ rootUrl: 'https://tc.example.com', taskcluster: { clientId: 'c', accessToken: 't' }, capacity: 3 }));
  assert.equal(plain.form, 'user-data config');
  assert.deepEqual(plain.settings, { rootUrl: 'https://tc.example.com', 'credentials.clientId': 'c', 'credentials.accessToken': 't', capacity: 3 });
  assert.equal(userDataSettings('#!/bin/bash\necho hi').form, 'user-data that is not JSON (not used)');
});
