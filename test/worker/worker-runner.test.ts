// `worker start --host worker-runner`, driven as worker-runner drives docker-worker: the config
// file it writes (DOCKER_WORKER_CONFIG), the protocol on the worker's real stdin/stdout pipes
// (welcome → hello, new-credentials, graceful-termination, shutdown), and exiting once stopped.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import taskcluster from 'taskcluster-client';
import { WorkerHarness } from '../support/worker.ts';
import { FakeRunner } from '../support/fake-runner.ts';
import { TASKENV_PASS, removeOwnedBy, testEngine } from '../support/docker.ts';

let h: WorkerHarness;
const dir = mkdtempSync(path.join(os.tmpdir(), 'runner-test-'));
const runners: FakeRunner[] = [];
before(async () => { h = await WorkerHarness.start({ noWorker: true }); });
after(async () => {
  for (const r of runners) await r.stop();
  await h?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** The config worker-runner writes for docker-worker, for a fresh worker of the harness's pool. */
function runnerConfig(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const workerId = `wr-${randomBytes(4).toString('hex')}`;
  return {
    // worker-runner's part (dockerworker.go: ConfigureRun)
    rootUrl: h.rootUrl,
    taskcluster: { clientId: h.credentials.clientId, accessToken: h.credentials.accessToken },
    workerId, workerGroup: 'runner-group', provisionerId: h.config.provisionerId, workerType: `wt-${workerId}`,
    publicIp: '198.51.100.7', privateIp: '10.0.0.7', instanceType: 'm5.large', workerNodeType: 'm5.large', instanceId: 'i-0123456789abcdef0',
    region: 'us-west-2', host: 'ec2-198-51-100-7.compute.amazonaws.com', workerLocation: JSON.stringify({ cloud: 'aws', region: 'us-west-2', availabilityZone: 'us-west-2a' }),
    // the worker pool's workerConfig, docker-worker style
    capacity: 1, shutdown: { enabled: true, afterIdleSeconds: 0 }, dockerConfig: { allowPrivileged: false },
    ssl: { certificate: '/etc/star.pem' }, statelessHostname: { enabled: false },
    // this worker's own settings
    stateDir: path.join(dir, workerId), 'task.cancelPollSeconds': 1,
    ...overrides,
  };
}

/** A task for the runner's own pool (each test has its own, so no test takes another's task). */
function submitTo(config: Record<string, unknown>, payload: Record<string, unknown>): Promise<string> {
  return h.submit(payload, { taskQueueId: `${config.provisionerId as string}/${config.workerType as string}` });
}

function startRunner(config: Record<string, unknown>): FakeRunner {
  const r = new FakeRunner({ configFile: path.join(dir, `${config.workerId as string}.json`), config });
  runners.push(r);
  return r;
}

async function welcomed(r: FakeRunner): Promise<void> {
  r.send({ type: 'welcome', capabilities: ['graceful-termination', 'shutdown', 'new-credentials', 'log', 'error-report'] });
  const hello = await r.message('hello');
  assert.deepEqual([...(hello.capabilities as string[])].sort(), ['graceful-termination', 'new-credentials', 'shutdown']);
}

test('welcome is answered with hello; the startup line names the host and every identity from the runner\'s config; the worker runs tasks', async () => {
  const config = runnerConfig();
  const r = startRunner(config);
  try {
    await welcomed(r);
    const identity = await r.logEvent('worker identity');
    assert.equal(identity.host, 'worker-runner');
    assert.match(String(identity.configSource), /^worker-runner \(.*\.json\)$/);
    assert.equal(identity.workerId, config.workerId);
    assert.equal(identity.workerGroup, 'runner-group');
    assert.equal(identity.instanceType, 'm5.large');
    assert.equal(identity.instanceId, 'i-0123456789abcdef0');
    assert.equal(identity.region, 'us-west-2');
    assert.equal(identity.publicIp, '198.51.100.7');
    assert.equal(identity.privateIp, '10.0.0.7');
    assert.equal(identity.capacity, 1);
    assert.deepEqual(identity.ignoredSettings, ['ssl.certificate', 'statelessHostname.enabled']);
    assert.ok(!JSON.stringify(identity).includes(h.credentials.accessToken), 'no access token in the log');
    await r.logEvent('worker started');
    const taskId = await submitTo(config, {
      image: TASKENV_PASS, command: ['/bin/sh', '-c', 'echo "$TASKCLUSTER_INSTANCE_TYPE $TASKCLUSTER_PUBLIC_IP $TASKCLUSTER_WORKER_LOCATION" > /env.txt'], maxRunTime: 60,
      artifacts: { 'public/env.txt': { type: 'file', path: '/env.txt' } },
    });
    const status = await h.waitForResolution(taskId);
    assert.equal(status.state, 'completed');
    assert.equal(status.runs[0]!.workerId, config.workerId);
    assert.equal((await h.artifact(taskId, 0, 'public/env.txt')).text, 'm5.large 198.51.100.7 {"cloud":"aws","region":"us-west-2","availabilityZone":"us-west-2a"}\n');
  } finally {
    r.send({ type: 'graceful-termination', 'finish-tasks': false });
    assert.equal((await r.exited).code, 0);
  }
});

test('new-credentials: the next claimWork uses them (a worker started with a wrong token then takes a task)', async () => {
  const config = runnerConfig({ taskcluster: { clientId: h.credentials.clientId, accessToken: 'not-the-token-aaaaaaaaaaaaaaaaaaaaaaaaaaaaa' } });
  const r = startRunner(config);
  try {
    await welcomed(r);
    await r.logEvent('claimWork failed');
    // Temporary credentials (with a certificate), as worker-runner hands out after re-registering.
    const temp = taskcluster.createTemporaryCredentials({
      start: new Date(Date.now() - 60_000), expiry: taskcluster.fromNow('1 hour'), scopes: ['*'],
      credentials: { clientId: h.credentials.clientId, accessToken: h.credentials.accessToken },
    }) as { clientId: string; accessToken: string; certificate: string };
    r.send({ type: 'new-credentials', 'client-id': temp.clientId, 'access-token': temp.accessToken, certificate: temp.certificate });
    await r.logEvent('worker credentials replaced', (l) => l.temporary === true);
    const taskId = await submitTo(config, { image: TASKENV_PASS, command: ['true'], maxRunTime: 60 });
    assert.equal((await h.waitForResolution(taskId)).state, 'completed', 'claimed with the new credentials');
  } finally {
    r.send({ type: 'graceful-termination', 'finish-tasks': false });
    await r.exited;
  }
});

test('graceful-termination with finish-tasks: the running task finishes, then the worker exits', async () => {
  const config = runnerConfig();
  const r = startRunner(config);
  try {
    await welcomed(r);
    const taskId = await submitTo(config, { image: TASKENV_PASS, command: ['/bin/sh', '-c', 'sleep 3; echo finished'], maxRunTime: 60 });
    await h.waitForRunning(taskId);
    await r.logEvent('claimed task', (l) => l.taskId === taskId);
    r.send({ type: 'graceful-termination', 'finish-tasks': true });
    const exit = await r.exited;
    assert.equal(exit.code, 0);
    const status = await h.waitForResolution(taskId, 5_000);
    assert.equal(status.state, 'completed', 'the task ran to its end');
    assert.match(await h.taskLog(taskId), /Successful task run with exit code: 0/);
  } finally {
    await r.stop();
  }
});

test('graceful-termination without finish-tasks: the running task is resolved worker-shutdown (log uploaded), the worker exits', async () => {
  const config = runnerConfig();
  const r = startRunner(config);
  try {
    await welcomed(r);
    const taskId = await submitTo(config, { image: TASKENV_PASS, command: ['/bin/sh', '-c', 'echo started; sleep 120'], maxRunTime: 300 });
    await h.waitForRunning(taskId);
    await r.logEvent('claimed task', (l) => l.taskId === taskId);
    r.send({ type: 'graceful-termination', 'finish-tasks': false });
    assert.equal((await r.exited).code, 0);
    const run = await h.waitForRun(taskId, 0, 5_000);
    assert.equal(run.state, 'exception');
    assert.equal(run.reasonResolved, 'worker-shutdown');
    assert.match(await h.taskLog(taskId), /Reason: worker-shutdown/);
    assert.deepEqual(await testEngine().listOwnedContainers(String(r.logLines.find((l) => l.message === 'worker identity')!.workerId)), [], 'container removed');
  } finally {
    await r.stop();
  }
});

test('SIGTERM under worker-runner: the running task is resolved worker-shutdown and the process exits soon after (never hangs)', async () => {
  const config = runnerConfig();
  const r = startRunner(config);
  try {
    await welcomed(r);
    const taskId = await submitTo(config, { image: TASKENV_PASS, command: ['/bin/sh', '-c', 'sleep 120'], maxRunTime: 300 });
    await r.logEvent('claimed task', (l) => l.taskId === taskId);
    await h.waitForRunning(taskId);
    r.child.kill('SIGTERM');
    const resolved = await r.logEvent('task resolved', (l) => l.taskId === taskId, 60_000);
    assert.equal(resolved.taskState, 'exception/worker-shutdown');
    // stdin stays open (worker-runner holds it): the process must still end by itself.
    const exit = await Promise.race([r.exited, new Promise<undefined>((res) => setTimeout(res, 20_000))]);
    assert.ok(exit, 'the worker exited after SIGTERM with worker-runner\'s stdin still open');
    assert.equal(exit.code, 0);
  } finally {
    await r.stop();
    await removeOwnedBy(testEngine(), config.workerId as string);
  }
});

test('idle shutdown under worker-runner: the worker sends shutdown, then exits', async () => {
  const r = startRunner(runnerConfig({ shutdown: { enabled: true, afterIdleSeconds: 1 } }));
  try {
    await welcomed(r);
    await r.message('shutdown', 30_000);
    assert.equal((await r.exited).code, 0);
    assert.ok(r.logLines.some((l) => l.message === 'worker stopped' && l.reason === 'idle'));
  } finally {
    await r.stop();
  }
});

test('a runner that offers no capabilities gets an empty hello; an idle worker then exits without sending shutdown', async () => {
  const r = startRunner(runnerConfig({ shutdown: { enabled: true, afterIdleSeconds: 1 } }));
  try {
    r.send({ type: 'welcome', capabilities: [] });
    assert.deepEqual((await r.message('hello')).capabilities, []);
    assert.equal((await r.exited).code, 0);
    assert.ok(!r.messages.some((m) => m.type === 'shutdown'), 'nothing the runner did not offer is sent');
  } finally {
    await r.stop();
  }
});

test('a missing DOCKER_WORKER_CONFIG file is a clear error, not a crash', async () => {
  const r = new FakeRunner({ configFile: path.join(dir, 'unused.json'), config: {}, env: { DOCKER_WORKER_CONFIG: path.join(dir, 'nope.json') } });
  runners.push(r);
  const exit = await r.exited;
  assert.equal(exit.code, 2);
  assert.match(r.stderr.join('\n'), /DOCKER_WORKER_CONFIG names .*nope\.json, which could not be read as JSON/);
});

test('an unknown --host is refused with the kinds there are', async () => {
  const { spawnSync } = await import('node:child_process');
  const out = spawnSync(path.resolve(import.meta.dirname, '../../bin/worker'), ['start', '--host', 'gcp'], { encoding: 'utf8', env: { PATH: process.env.PATH, HOME: process.env.HOME, WORKER_STATE_DIR: dir } });
  assert.equal(out.status, 2);
  assert.match(out.stderr, /--host must be one of local, worker-runner, aws, not gcp/);
});
