import { test, describe, mock } from 'node:test';
import assert from 'node:assert/strict';
import { backingLogName, normalizeImage, planTask } from '../../lib/task/plan.ts';
import type { PlanInput, WorkerSettings } from '../../lib/task/plan.ts';
import { RESERVED_ENV_NAMES, containerEnv } from '../../lib/task/reserved-env.ts';
import type { ContainerPlan, Payload } from '../../lib/task/types.ts';
import { ALL_FEATURES, onlyFeatures } from '../support/features.ts';

const allFeatures = ALL_FEATURES;

function worker(overrides: Partial<WorkerSettings> = {}): WorkerSettings {
  return {
    provisionerId: 'proj-a',
    workerType: 'ci',
    workerGroup: 'local',
    workerId: 'w-1',
    rootUrl: 'https://tc.example.com',
    instanceType: 'local',
    publicIp: '127.0.0.1',
    allowPrivileged: false,
    devices: {},
    workerVersion: '0.0.0-test',
    hostname: 'localhost',
    ...overrides,
  };
}

function input(payload: Partial<Payload>, scopes: string[] = [], overrides: Partial<PlanInput> = {}): PlanInput {
  return {
    taskId: 'T0aaaaaaaaaaaaaaaaaaaa',
    runId: 2,
    task: {
      provisionerId: 'proj-a',
      workerType: 'ci',
      created: '2030-01-01T00:00:00.000Z',
      deadline: '2030-01-02T00:00:00.000Z',
      expires: '2030-02-01T00:00:00.000Z',
      scopes,
      payload,
    },
    payload: { image: 'busybox', maxRunTime: 60, ...payload },
    claim: { takenUntil: '2030-01-01T00:20:00.000Z' },
    worker: worker(),
    features: allFeatures,
    ...overrides,
  };
}

const env = (plan: ContainerPlan) => new Map(plan.create.Env!.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
const messages = (plan: ContainerPlan) => plan.refusals.map((r) => r.message);

describe('reserved environment variables', () => {
  test('the payload cannot override them; the worker value wins and appears once', () => {
    const spoof = Object.fromEntries(RESERVED_ENV_NAMES.map((n) => [n, 'spoofed']));
    const plan = planTask(input({ env: { ...spoof, MINE: 'kept' } }, [], { worker: worker({ workerLocation: '{"cloud":"local"}' }) }));
    const vars = env(plan);
    assert.equal(vars.get('TASK_ID'), 'T0aaaaaaaaaaaaaaaaaaaa');
    assert.equal(vars.get('RUN_ID'), '2');
    assert.equal(vars.get('TASKCLUSTER_ROOT_URL'), 'https://tc.example.com');
    assert.equal(vars.get('TASKCLUSTER_WORKER_POOL'), 'proj-a/ci');
    assert.equal(vars.get('TASKCLUSTER_WORKER_TYPE'), 'ci');
    assert.equal(vars.get('TASKCLUSTER_WORKER_GROUP'), 'local');
    assert.equal(vars.get('TASKCLUSTER_INSTANCE_TYPE'), 'local');
    assert.equal(vars.get('TASKCLUSTER_PUBLIC_IP'), '127.0.0.1');
    assert.equal(vars.get('TASKCLUSTER_WORKER_LOCATION'), '{"cloud":"local"}');
    assert.equal(vars.get('MINE'), 'kept');
    assert.equal(plan.create.Env!.length, vars.size, 'no variable appears twice');
    assert.ok(![...vars.values()].includes('spoofed'));
  });

  test('a reserved name the worker has no value for is not taken from the payload', () => {
    const plan = planTask(input({ env: { TASKCLUSTER_WORKER_LOCATION: 'spoofed' } }));
    assert.equal(env(plan).has('TASKCLUSTER_WORKER_LOCATION'), false);
  });

  test('later stages keep the rule: containerEnv puts reserved values last', () => {
    const plan = planTask(input({ env: { A: '1' } }));
    const list = containerEnv([{ PROXY: 'feature' }, { A: '1' }, { A: 'decrypted', TASK_ID: 'from-secret' }], plan.reservedEnv);
    assert.ok(list.includes('A=decrypted'));
    assert.ok(list.includes('PROXY=feature'));
    assert.ok(list.includes('TASK_ID=T0aaaaaaaaaaaaaaaaaaaa'));
    assert.ok(!list.includes('TASK_ID=from-secret'));
  });
});

describe('privileged containers', () => {
  const asked = { capabilities: { privileged: true } };

  test('with the scope on a worker that allows it: privileged, no refusal', () => {
    for (const scope of ['docker-worker:capability:privileged', 'docker-worker:capability:privileged:proj-a/ci']) {
      const plan = planTask(input(asked, [scope], { worker: worker({ allowPrivileged: true }) }));
      assert.equal(plan.create.HostConfig!.Privileged, true);
      assert.deepEqual(plan.refusals, []);
    }
  });

  test('without the scope: refused, naming the scope, and not privileged', () => {
    const plan = planTask(input(asked, ['docker-worker:capability:privileged:other/pool'], { worker: worker({ allowPrivileged: true }) }));
    assert.equal(plan.create.HostConfig!.Privileged, false);
    assert.deepEqual(plan.refusals, [{
      reason: 'malformed-payload',
      message: 'Insufficient scopes to run task in privileged mode. payload.capabilities.privileged needs the scope docker-worker:capability:privileged (or docker-worker:capability:privileged:proj-a/ci) in task.scopes',
    }]);
  });

  test('on a worker that does not allow it: refused, naming the configuration', () => {
    const plan = planTask(input(asked, ['docker-worker:capability:privileged']));
    assert.equal(plan.create.HostConfig!.Privileged, false);
    assert.equal(plan.refusals.length, 1);
    assert.match(plan.refusals[0]!.message, /^payload\.capabilities\.privileged is true, but worker pool proj-a\/ci does not allow privileged containers/);
    assert.match(plan.refusals[0]!.message, /allowPrivileged/);
  });

  test('neither scope nor configuration: both reasons are given', () => {
    assert.equal(planTask(input(asked)).refusals.length, 2);
  });

  test('not asked: never privileged, even on a worker that allows it', () => {
    assert.equal(planTask(input({}, ['*'], { worker: worker({ allowPrivileged: true }) })).create.HostConfig!.Privileged, false);
  });
});

describe('devices', () => {
  const devicesOn = worker({
    devices: { kvm: { enabled: true, path: '/dev/kvm' }, hostSharedMemory: { enabled: true, path: '/dev/shm' }, loopbackVideo: { enabled: true, path: '/dev/video7' } },
  });

  test('granted and enabled devices are attached; /dev/shm is bind-mounted', () => {
    const plan = planTask(input({ capabilities: { devices: { kvm: true, hostSharedMemory: true, loopbackVideo: true } } }, ['docker-worker:capability:device:*'], { worker: devicesOn }));
    assert.deepEqual(plan.refusals, []);
    assert.deepEqual(plan.create.HostConfig!.Devices, [
      { PathOnHost: '/dev/kvm', PathInContainer: '/dev/kvm', CgroupPermissions: 'rwm' },
      { PathOnHost: '/dev/video7', PathInContainer: '/dev/video7', CgroupPermissions: 'rwm' },
    ]);
    assert.deepEqual(plan.create.HostConfig!.Binds, ['/dev/shm:/dev/shm']);
  });

  test('a device without its scope is refused and not attached', () => {
    const plan = planTask(input({ capabilities: { devices: { kvm: true } } }, ['docker-worker:capability:device:loopbackVideo'], { worker: devicesOn }));
    assert.equal(plan.create.HostConfig!.Devices, undefined);
    assert.deepEqual(messages(plan), [
      'Insufficient scopes to attach devices to task container. payload.capabilities.devices.kvm needs the scope docker-worker:capability:device:kvm (or docker-worker:capability:device:kvm:proj-a/ci) in task.scopes',
    ]);
  });

  test('a device this worker does not provide is refused, naming the configuration', () => {
    const plan = planTask(input({ capabilities: { devices: { loopbackAudio: true } } }, ['docker-worker:capability:device:loopbackAudio'], { worker: devicesOn }));
    assert.equal(plan.devices.length, 0);
    assert.equal(plan.refusals.length, 1);
    assert.match(plan.refusals[0]!.message, /devices\.loopbackAudio is true, but worker pool proj-a\/ci does not provide the loopbackAudio device \(worker configuration devices\.loopbackAudio\.enabled\)/);
  });

  test('a device set to false asks for nothing', () => {
    const plan = planTask(input({ capabilities: { devices: { kvm: false } } }));
    assert.deepEqual(plan.refusals, []);
    assert.deepEqual(plan.devices, []);
  });
});

describe('other capabilities and scoped features', () => {
  test('disableSeccomp: unconfined only with scope and configuration', () => {
    const ok = planTask(input({ capabilities: { disableSeccomp: true } }, ['docker-worker:capability:disableSeccomp'], { worker: worker({ allowDisableSeccomp: true }) }));
    assert.deepEqual(ok.create.HostConfig!.SecurityOpt, ['seccomp=unconfined']);
    assert.deepEqual(ok.refusals, []);
    const refused = planTask(input({ capabilities: { disableSeccomp: true } }, ['docker-worker:capability:disableSeccomp']));
    assert.equal(refused.create.HostConfig!.SecurityOpt, undefined);
    assert.equal(refused.refusals.length, 1);
  });

  test('allowPtrace adds SYS_PTRACE with docker-worker:feature:allowPtrace, else it is refused', () => {
    const ok = planTask(input({ features: { allowPtrace: true } }, ['docker-worker:feature:allowPtrace']));
    assert.deepEqual(ok.create.HostConfig!.CapAdd, ['SYS_PTRACE']);
    const refused = planTask(input({ features: { allowPtrace: true } }));
    assert.equal(refused.create.HostConfig!.CapAdd, undefined);
    assert.deepEqual(messages(refused), ["Insufficient scopes to use 'allowPtrace' feature.  Try adding docker-worker:feature:allowPtrace to the .scopes array. payload.features.allowPtrace needs the scope docker-worker:feature:allowPtrace in task.scopes"]);
  });

  test('a cache without its scope is refused', () => {
    const plan = planTask(input({ cache: { 'level-3-checkouts': '/checkouts' } }, ['docker-worker:cache:level-1-*']));
    assert.deepEqual(messages(plan), [
      'Insufficient scopes to attach cache volumes. payload.cache["level-3-checkouts"] needs the scope docker-worker:cache:level-3-checkouts (or docker-worker:cache:level-3-checkouts:proj-a/ci) in task.scopes',
    ]);
  });

  test('expanded scopes, when given, are used instead of task.scopes', () => {
    const plan = planTask(input({ cache: { c: '/c' } }, ['assume:project:x'], { scopes: ['assume:project:x', 'docker-worker:cache:c'] }));
    assert.deepEqual(plan.refusals, []);
  });

  test('a private image artifact is not refused by the plan (the image store fails the task instead)', () => {
    const image = { type: 'task-image' as const, taskId: 'abc', path: 'private/image.tar' };
    assert.deepEqual(planTask(input({ image })).refusals, []);
  });
});

describe('features', () => {
  test('features on by default run unless turned off; others only when asked', () => {
    const names = (p: ContainerPlan) => p.features.map((f) => f.name);
    assert.deepEqual(names(planTask(input({}))), ['localLiveLog', 'artifacts']);
    assert.deepEqual(names(planTask(input({ features: { localLiveLog: false, bulkLog: true, dind: true } }))), ['bulkLog', 'artifacts', 'dind']);
  });

  test('a feature this worker lacks: dropped when on by default, refused when asked for', () => {
    const only = onlyFeatures(['artifacts']);
    const quiet = planTask(input({}, [], { features: only }));
    assert.deepEqual(quiet.features.map((f) => f.name), ['artifacts']);
    assert.deepEqual(quiet.refusals, []);
    const asked = planTask(input({ features: { dind: true } }, [], { features: only }));
    assert.deepEqual(messages(asked), ['payload.features.dind is not available on this worker; remove it or set it to false']);
  });

  test('with artifacts turned off nothing is uploaded', () => {
    const plan = planTask(input({ features: { artifacts: false }, artifacts: { 'public/a': { type: 'file', path: '/a' } } }));
    assert.deepEqual(plan.artifacts, []);
  });

  test('relengAPIProxy gets the permissions named by the task scopes', () => {
    const relengAPI = { url: 'https://relengapi.example.com', token: 'issuing' };
    const plan = planTask(input({ features: { relengAPIProxy: true } }, ['docker-worker:relengapi-proxy:tooltool.download.public', 'other'], { worker: worker({ relengAPI }) }));
    assert.deepEqual(plan.refusals, []);
    assert.deepEqual(plan.features.find((f) => f.name === 'relengAPIProxy')?.options, { permissions: ['tooltool.download.public'] });
    assert.equal(plan.create.HostConfig?.NetworkMode, `taskcluster-task-${plan.taskId}-2`);
    assert.doesNotMatch(JSON.stringify(plan), /issuing/, 'the worker\'s token is not part of the plan');
  });

  test('relengAPIProxy on a worker without RelengAPI settings is refused with a sentence saying so', () => {
    const plan = planTask(input({ features: { relengAPIProxy: true } }));
    assert.deepEqual(plan.refusals.map((r) => r.message), [
      'payload.features.relengAPIProxy is not available on worker pool proj-a/ci: it has no RelengAPI configured (worker configuration relengAPI.url and relengAPI.token); run the task on a pool that provides it, or remove it',
    ]);
  });
});

describe('artifacts, logs, exit statuses, command', () => {
  test('artifacts are sorted by name and expire with the task unless they say otherwise', () => {
    const plan = planTask(input({ artifacts: { 'public/z': { type: 'directory', path: '/z' }, 'public/a': { type: 'file', path: '/a', expires: '2030-01-15T00:00:00.000Z' } } }));
    assert.deepEqual(plan.artifacts, [
      { name: 'public/a', type: 'file', path: '/a', expires: '2030-01-15T00:00:00.000Z' },
      { name: 'public/z', type: 'directory', path: '/z', expires: '2030-02-01T00:00:00.000Z' },
    ]);
  });

  test('a task without expires: things expire a year after the deadline', () => {
    const base = input({ artifacts: { a: { type: 'file', path: '/a' } } });
    const { expires: _gone, ...task } = base.task;
    const plan = planTask({ ...base, task });
    assert.equal(plan.taskExpires, '2031-01-02T00:00:00.000Z');
    assert.equal(plan.artifacts[0]!.expires, '2031-01-02T00:00:00.000Z');
  });

  test('log names: the payload\'s, else the worker default, else public/logs/live.log', () => {
    assert.equal(planTask(input({})).logName, 'public/logs/live.log');
    assert.equal(planTask(input({}, [], { worker: worker({ defaultLogName: 'public/logs/x.log' }) })).backingLogName, 'public/logs/x_backing.log');
    assert.equal(planTask(input({ log: 'a/b.txt' })).backingLogName, 'a/b_backing.txt');
    assert.equal(planTask(input({ log: '' })).logName, 'public/logs/live.log');
  });

  test('backing log names put _backing before the last extension', () => {
    assert.equal(backingLogName('public/logs/live.log'), 'public/logs/live_backing.log');
    assert.equal(backingLogName('apple/banana.log.txt'), 'apple/banana.log_backing.txt');
    assert.equal(backingLogName('live.log'), 'live_backing.log');
    assert.equal(backingLogName('public/noext'), 'public/noext_backing');
  });

  test('exit statuses are de-duplicated and sorted', () => {
    assert.deepEqual(planTask(input({ onExitStatus: { retry: [137, 72, 72], purgeCaches: [72] } })).onExitStatus, { retry: [72, 137], purgeCaches: [72] });
  });

  test('no command (or an empty one) leaves the image command in place', () => {
    assert.equal('Cmd' in planTask(input({})).create, false);
    assert.equal('Cmd' in planTask(input({ command: [] })).create, false);
    assert.deepEqual(planTask(input({ command: ['sh', '-c', 'exit 3'] })).create.Cmd, ['sh', '-c', 'exit 3']);
  });

  test('the container is a tty with stdout and stderr attached and docker-worker\'s shm and hosts', () => {
    const c = planTask(input({})).create;
    assert.equal(c.Tty, true);
    assert.equal(c.AttachStdout, true);
    assert.equal(c.AttachStderr, true);
    assert.equal(c.AttachStdin, false);
    assert.equal(c.HostConfig!.ShmSize, 1_800_000_000);
    assert.deepEqual(c.HostConfig!.ExtraHosts, ['localhost.localdomain:127.0.0.1']);
    assert.equal(planTask(input({}, [], { worker: worker({ shmSizeBytes: 1024 }) })).create.HostConfig!.ShmSize, 1024);
  });
});

describe('images', () => {
  test('registry names get :latest unless they carry a tag or digest', () => {
    assert.deepEqual(normalizeImage('busybox'), { kind: 'registry', name: 'busybox:latest' });
    assert.deepEqual(normalizeImage('localhost:5000/team/app'), { kind: 'registry', name: 'localhost:5000/team/app:latest' });
    assert.deepEqual(normalizeImage('localhost:5000/team/app:1.2'), { kind: 'registry', name: 'localhost:5000/team/app:1.2' });
    assert.deepEqual(normalizeImage('app@sha256:0123'), { kind: 'registry', name: 'app@sha256:0123' });
    assert.deepEqual(normalizeImage({ type: 'docker-image', name: 'ubuntu:24.04' }), { kind: 'registry', name: 'ubuntu:24.04' });
  });

  test('artifact images keep where they come from', () => {
    assert.deepEqual(normalizeImage({ type: 'task-image', taskId: 't', path: 'public/i.tar' }), { kind: 'task-image', taskId: 't', path: 'public/i.tar' });
    assert.deepEqual(normalizeImage({ type: 'indexed-image', namespace: 'n', path: 'public/i.tar' }), { kind: 'indexed-image', namespace: 'n', path: 'public/i.tar' });
  });
});

describe('determinism', () => {
  const busy = input({
    env: { Z: '1', A: '2', M: '3' },
    cache: { zz: '/z', aa: '/a' },
    artifacts: { 'public/y': { type: 'file', path: '/y' }, 'public/b': { type: 'file', path: '/b' } },
    capabilities: { privileged: true, devices: { kvm: true } },
    features: { taskclusterProxy: true },
  }, ['docker-worker:*'], { worker: worker({ allowPrivileged: true, devices: { kvm: { enabled: true, path: '/dev/kvm' } } }) });

  test('the same input gives the same plan whatever the clock says', () => {
    mock.timers.enable({ apis: ['Date'], now: 0 });
    const early = planTask(busy);
    mock.timers.setTime(4_102_444_800_000);
    const late = planTask(busy);
    mock.timers.reset();
    assert.deepEqual(early, late);
  });

  test('env, caches and artifacts come out sorted regardless of payload key order', () => {
    const plan = planTask(busy);
    assert.deepEqual(plan.create.Env!.slice(0, 3), ['A=2', 'M=3', 'RUN_ID=2']);
    assert.deepEqual(plan.caches.map((c) => c.name), ['aa', 'zz']);
    assert.deepEqual(plan.artifacts.map((a) => a.name), ['public/b', 'public/y']);
  });

  test('planning does not change its input', () => {
    const before = structuredClone({ ...busy, features: undefined }); // the features are code, not data
    planTask(busy);
    assert.deepEqual({ ...busy, features: undefined }, before);
  });
});
