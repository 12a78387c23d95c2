// The `sidecars` setting: presets under the operator's values, the checks on a bad entry, and
// what the plan does with a sidecar feature the worker has no image for.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sidecarSetting, sidecarsFormat } from '../../lib/features/sidecar-setting.ts';
import { providedFeatures } from '../../lib/features/registry.ts';
import { planTask } from '../../lib/task/plan.ts';
import type { WorkerSettings } from '../../lib/task/plan.ts';

test('a balrog preset needs only an image; the operator may override any part', () => {
  assert.equal(sidecarSetting('balrogVPNProxy', undefined), undefined);
  assert.deepEqual(sidecarSetting('balrogVPNProxy', { image: 'vpn:1', env: { A: 'b' } }), {
    image: 'vpn:1', env: { A: 'b' }, alias: 'balrog', capabilities: ['NET_ADMIN'], devices: ['/dev/net/tun'],
    readiness: { port: 80, path: '/', status: 401, tries: 15, intervalMs: 1000 },
  });
  assert.deepEqual(sidecarSetting('other', { image: 'x' }), { image: 'x', readiness: undefined });
});

test('bad sidecar entries are refused naming the entry and the key', () => {
  assert.throws(() => sidecarsFormat([]), /must be an object/);
  assert.throws(() => sidecarsFormat({ a: {} }), /sidecars\.a: "image" \(a local image\) is required/);
  assert.throws(() => sidecarsFormat({ a: { image: 'x', command: 'sh -c' } }), /sidecars\.a: "command" must be a list of strings/);
  assert.throws(() => sidecarsFormat({ a: { image: 'x', readiness: { path: '/' } } }), /"readiness" needs a "port"/);
  assert.throws(() => sidecarsFormat({ a: { image: 'x', ports: [80] } }), /unknown key "ports"/);
  assert.throws(() => sidecarsFormat({ 'a.b': { image: 'x' } }), /the name must be/);
  sidecarsFormat({ balrogVPNProxy: { image: 'x' }, mine: { image: 'y', command: ['a'], env: { K: 'v' }, readiness: { port: 8080, status: 200 } } });
});

const worker: WorkerSettings = { provisionerId: 'p', workerType: 'w', workerGroup: 'g', workerId: 'i', rootUrl: 'https://tc.example.com', instanceType: 'local', publicIp: '127.0.0.1', allowPrivileged: false, devices: {}, workerVersion: '0', hostname: 'h' };
const task = (features: Record<string, boolean>, scopes: string[]) => ({
  taskId: 'T0aaaaaaaaaaaaaaaaaaaa', runId: 0, claim: { takenUntil: '2030-01-01T00:20:00.000Z' },
  task: { provisionerId: 'p', workerType: 'w', created: '2030-01-01T00:00:00.000Z', deadline: '2030-01-02T00:00:00.000Z', scopes, payload: {} },
  payload: { image: 'busybox', maxRunTime: 60, features },
});

test('a sidecar feature without an image on this worker is refused with a sentence saying so', () => {
  const plan = planTask({ ...task({ balrogVPNProxy: true }, ['docker-worker:feature:balrogVPNProxy']), worker });
  assert.deepEqual(plan.refusals.map((r) => r.message), [
    'payload.features.balrogVPNProxy is not available on worker pool p/w: it has no image for it (worker configuration sidecars.balrogVPNProxy.image); run the task on a pool that provides it, or remove it',
  ]);
});

test('a configured sidecar puts the task on its per-task network; operator-defined names become features', () => {
  const sidecars = { balrogVPNProxy: { image: 'vpn' }, mine: { image: 'y', requiredScope: 'project:mine' } };
  const features = providedFeatures(sidecars);
  assert.equal(features.find((f) => f.name === 'mine')?.requiredScope, 'project:mine');
  assert.equal(features.filter((f) => f.name === 'balrogVPNProxy').length, 1);
  const plan = planTask({ ...task({ balrogVPNProxy: true, mine: true }, ['docker-worker:feature:balrogVPNProxy', 'project:mine']), worker: { ...worker, sidecars }, features });
  assert.deepEqual(plan.refusals, []);
  assert.equal(plan.create.HostConfig!.NetworkMode, 'taskcluster-task-T0aaaaaaaaaaaaaaaaaaaa-0');
  assert.deepEqual(plan.features.filter((f) => f.name === 'mine' || f.name === 'balrogVPNProxy').map((f) => f.options), [{ sidecar: 'balrogVPNProxy' }, { sidecar: 'mine' }]);
});
