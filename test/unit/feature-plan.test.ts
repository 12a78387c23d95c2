// What a feature adds through the plan (pure, no Docker): env under the payload's and the
// worker's reserved variables, binds, devices, capabilities, security options, a network with
// aliases, extra hosts, an entrypoint wrapper, secrets to mask; and the refusals the seam
// makes itself (a reserved artifact name, two features wanting the same network or
// entrypoint, a feature the task lacks the scope for).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ContainerAdditions, Feature } from '../../lib/features/feature.ts';
import { FEATURES } from '../../lib/features/registry.ts';
import { planTask, type PlanInput } from '../../lib/task/plan.ts';
import type { Payload } from '../../lib/task/types.ts';

function adding(name: string, container: ContainerAdditions, extra: Partial<Feature> = {}): Feature {
  return { name, defaultEnabled: true, plan: () => ({ options: {}, container }), forTask: () => ({ cleanup: async () => undefined }), ...extra };
}

function input(payload: Partial<Payload>, features: Feature[], scopes: string[] = []): PlanInput {
  return {
    taskId: 'T0aaaaaaaaaaaaaaaaaaaa', runId: 0,
    task: { provisionerId: 'p', workerType: 'w', created: '2030-01-01T00:00:00.000Z', deadline: '2030-01-02T00:00:00.000Z', scopes, payload },
    payload: { image: 'busybox', maxRunTime: 60, ...payload },
    claim: { takenUntil: '2030-01-01T00:20:00.000Z' },
    worker: { provisionerId: 'p', workerType: 'w', workerGroup: 'g', workerId: 'i', rootUrl: 'https://tc.example.com', instanceType: 'local', publicIp: '127.0.0.1', allowPrivileged: false, devices: {}, workerVersion: '0', hostname: 'h' },
    features: [...FEATURES, ...features],
  };
}

test('every kind of addition reaches the create spec', () => {
  const plan = planTask(input({ env: { SHARED: 'payload' } }, [adding('sidecar', {
    env: { SHARED: 'feature', FEATURE_ONLY: '1', TASK_ID: 'spoofed' },
    binds: ['/host/sock:/run/sock:ro'],
    devices: [{ PathOnHost: '/dev/fuse', PathInContainer: '/dev/fuse', CgroupPermissions: 'rwm' }],
    capAdd: ['SYS_PTRACE'],
    securityOpt: ['apparmor=docker-worker-ptrace'],
    networkMode: 'task-net', networkAliases: ['task'],
    extraHosts: ['taskcluster:10.0.0.2'],
    entrypoint: ['/wrapper/hold-open', '--'],
    maskedSecrets: ['s3cr3t'],
  })]));
  assert.deepEqual(plan.refusals, []);
  const env = plan.create.Env!;
  assert.ok(env.includes('SHARED=payload'), 'the payload wins over a feature');
  assert.ok(env.includes('FEATURE_ONLY=1'));
  assert.ok(env.includes('TASK_ID=T0aaaaaaaaaaaaaaaaaaaa'), 'the worker wins over everyone');
  const host = plan.create.HostConfig!;
  assert.deepEqual(host.Binds, ['/host/sock:/run/sock:ro']);
  assert.deepEqual(host.Devices, [{ PathOnHost: '/dev/fuse', PathInContainer: '/dev/fuse', CgroupPermissions: 'rwm' }]);
  assert.deepEqual(host.CapAdd, ['SYS_PTRACE']);
  assert.deepEqual(host.SecurityOpt, ['apparmor=docker-worker-ptrace']);
  assert.equal(host.NetworkMode, 'task-net');
  assert.deepEqual(plan.create.NetworkingConfig, { EndpointsConfig: { 'task-net': { Aliases: ['task'] } } });
  assert.deepEqual(host.ExtraHosts, ['localhost.localdomain:127.0.0.1', 'taskcluster:10.0.0.2']);
  assert.deepEqual(plan.create.Entrypoint, ['/wrapper/hold-open', '--']);
  assert.deepEqual(plan.maskedSecrets, ['s3cr3t']);
  assert.deepEqual(plan.features.map((f) => f.name), ['localLiveLog', 'artifacts', 'sidecar']);
});

test('a feature turned off adds nothing', () => {
  const plan = planTask(input({ features: { sidecar: false } }, [adding('sidecar', { capAdd: ['NET_ADMIN'] })]));
  assert.equal(plan.create.HostConfig!.CapAdd, undefined);
  assert.ok(!plan.features.some((f) => f.name === 'sidecar'));
});

test('a payload artifact with a name a feature reserves is refused, naming both', () => {
  const plan = planTask(input({ features: { bulkLog: true }, artifacts: { 'public/logs/terminal_bulk.log.gz': { type: 'file', path: '/x' } } }, []));
  assert.deepEqual(plan.refusals.map((r) => r.message), [
    'payload.artifacts["public/logs/terminal_bulk.log.gz"] is an artifact the bulkLog feature uploads itself; rename the artifact or turn bulkLog off',
  ]);
});

test('two features that both set the network (or the entrypoint) cannot be used together', () => {
  const plan = planTask(input({}, [adding('proxyA', { networkMode: 'a' }), adding('proxyB', { networkMode: 'b' })]));
  assert.deepEqual(plan.refusals.map((r) => r.message), [
    'payload.features proxyA and proxyB cannot be used together (each sets the container\'s networkMode); turn one of them off',
  ]);
});

test('a feature needing a scope the task lacks is refused for the scope and adds nothing', () => {
  const guarded = adding('guarded', { capAdd: ['SYS_ADMIN'] }, { defaultEnabled: false, requiredScope: 'docker-worker:feature:guarded' });
  const refused = planTask(input({ features: { guarded: true } }, [guarded]));
  assert.deepEqual(refused.refusals.map((r) => r.message), ['payload.features.guarded needs the scope docker-worker:feature:guarded in task.scopes']);
  assert.equal(refused.create.HostConfig!.CapAdd, undefined);
  const granted = planTask(input({ features: { guarded: true } }, [guarded], ['docker-worker:feature:*']));
  assert.deepEqual(granted.refusals, []);
  assert.deepEqual(granted.create.HostConfig!.CapAdd, ['SYS_ADMIN']);
});

test('features that put the task on the same per-task network plan together', () => {
  const plan = planTask(input({}, [adding('proxyA', { networkMode: 'task-net' }), adding('proxyB', { networkMode: 'task-net' })]));
  assert.deepEqual(plan.refusals, []);
  assert.equal(plan.create.HostConfig!.NetworkMode, 'task-net');
});

test('encryptedEnv follows payload.encryptedEnv, not a features switch; it knows payload.env\'s names', () => {
  const none = planTask(input({}, []));
  assert.ok(!none.features.some((f) => f.name === 'encryptedEnv'));
  const empty = planTask(input({ encryptedEnv: [] }, []));
  assert.ok(!empty.features.some((f) => f.name === 'encryptedEnv'));
  const some = planTask(input({ encryptedEnv: ['AAAA'], env: { B: '1', A: '2' }, features: { encryptedEnv: false } as Payload['features'] }, []));
  assert.deepEqual(some.features.find((f) => f.name === 'encryptedEnv'), { name: 'encryptedEnv', options: { payloadEnvNames: ['A', 'B'] } });
  assert.deepEqual(some.encryptedEnv, ['AAAA']);
  assert.deepEqual(some.refusals, []);
});

test('chainOfTrust reserves its artifact names and carries the pool\'s OpenPGP setting', () => {
  const plan = planTask({ ...input({ features: { chainOfTrust: true } }, []) });
  const planned = plan.features.find((f) => f.name === 'chainOfTrust');
  assert.deepEqual(planned?.options, { openpgpSignature: false });
  assert.deepEqual(planned?.reservedArtifacts, ['public/chain-of-trust.json', 'public/chain-of-trust.json.sig', 'public/chainOfTrust.json.asc', 'public/logs/certified.log']);
  const base = input({ features: { chainOfTrust: true } }, []);
  const withPgp = planTask({ ...base, worker: { ...base.worker, chainOfTrustOpenpgp: true } });
  assert.deepEqual(withPgp.features.find((f) => f.name === 'chainOfTrust')?.options, { openpgpSignature: true });
});

test('allowPtrace plans CAP_SYS_PTRACE with its scope, and docker-worker\'s sentence without it', () => {
  const ok = planTask(input({ features: { allowPtrace: true } }, [], ['docker-worker:feature:allowPtrace']));
  assert.deepEqual(ok.refusals, []);
  assert.deepEqual(ok.create.HostConfig!.CapAdd, ['SYS_PTRACE']);
  const refused = planTask(input({ features: { allowPtrace: true } }, []));
  assert.equal(refused.create.HostConfig!.CapAdd, undefined);
  assert.match(refused.refusals[0]?.message ?? '', /^Insufficient scopes to use 'allowPtrace' feature\. {2}Try adding docker-worker:feature:allowPtrace to the \.scopes array\. /);
});
