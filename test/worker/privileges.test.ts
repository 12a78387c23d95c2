// Privileged containers: a task gets one only when it asks (capabilities.privileged), holds
// docker-worker:capability:privileged and runs on a worker configured with allowPrivileged;
// otherwise it is refused as malformed-payload, with a sentence saying what is missing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { WorkerHarness } from '../support/worker.ts';
import { TASKENV_PASS, testEngine, testWorkerId, removeOwnedBy } from '../support/docker.ts';

let allowing: WorkerHarness;
let refusing: WorkerHarness;
let seccompAllowing: WorkerHarness;
/** Why this Docker daemon cannot start privileged containers at all, if it cannot. */
let privilegedUnsupported: string | undefined;

/** Some daemons (in a container, or short of a capability themselves) refuse every privileged container. */
async function probePrivileged(): Promise<string | undefined> {
  const engine = testEngine();
  const workerId = testWorkerId('privileged-probe');
  try {
    const id = await engine.createContainer({ Image: TASKENV_PASS, Cmd: ['true'], HostConfig: { Privileged: true } }, { workerId });
    await engine.startContainer(id);
    await engine.waitContainer(id);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  } finally {
    await removeOwnedBy(engine, workerId);
  }
}

before(async () => {
  [allowing, refusing, seccompAllowing, privilegedUnsupported] = await Promise.all([
    WorkerHarness.start({ config: { capacity: 2, allowPrivileged: true } }),
    WorkerHarness.start({ config: { allowPrivileged: false } }),
    WorkerHarness.start({ config: { capacity: 2, allowDisableSeccomp: true } }),
    probePrivileged(),
  ]);
});
after(async () => { await Promise.all([allowing?.stop(), refusing?.stop(), seccompAllowing?.stop()]); });

// Privileged: CAP_SYS_ADMIN (bit 21) among the effective capabilities, and mount allowed.
const probe = ['/bin/sh', '-c', 'grep CapEff /proc/self/status; mkdir -p /mnt/t && mount -t tmpfs none /mnt/t && echo mounted tmpfs'];
const privilegedScope = 'docker-worker:capability:privileged';
const hasSysAdmin = (log: string) => {
  const capEff = /^CapEff:\s+([0-9a-f]+)\r?$/m.exec(log)?.[1];
  assert.ok(capEff, `no CapEff line in:\n${log}`);
  return (BigInt(`0x${capEff}`) & (1n << 21n)) !== 0n;
};

test('a task with the privileged scope on a worker allowing it runs privileged', async (t) => {
  const taskId = await allowing.submit({ image: TASKENV_PASS, command: probe, maxRunTime: 60, capabilities: { privileged: true } }, { scopes: [privilegedScope] });
  const status = await allowing.waitForResolution(taskId);
  const log = await allowing.taskLog(taskId);
  if (privilegedUnsupported) {
    // The worker asked Docker for a privileged container (no refusal); the daemon could not.
    assert.equal(status.state, 'failed', log);
    assert.ok(log.includes('Failure to properly start execution environment.'), log);
    t.skip(`this Docker daemon cannot start privileged containers: ${privilegedUnsupported}`);
    return;
  }
  assert.equal(status.state, 'completed', log);
  assert.ok(hasSysAdmin(log), 'CAP_SYS_ADMIN is effective');
  assert.match(log, /^mounted tmpfs\r?$/m);
});

test('an ordinary task is not privileged (the probe fails)', async () => {
  const taskId = await allowing.submit({ image: TASKENV_PASS, command: probe, maxRunTime: 60 });
  const status = await allowing.waitForResolution(taskId);
  const log = await allowing.taskLog(taskId);
  assert.equal(status.state, 'failed', log);
  assert.ok(!hasSysAdmin(log), 'CAP_SYS_ADMIN is not effective');
  assert.doesNotMatch(log, /mounted tmpfs/);
});

test('privileged without the scope: exception/malformed-payload naming the scope', async () => {
  const taskId = await allowing.submit({ image: TASKENV_PASS, command: ['echo', 'should not run'], maxRunTime: 60, capabilities: { privileged: true } });
  const status = await allowing.waitForResolution(taskId);
  assert.equal(status.state, 'exception');
  assert.equal(status.runs[0].reasonResolved, 'malformed-payload');
  const log = await allowing.taskLog(taskId);
  assert.match(log, /\[taskcluster:error\] Insufficient scopes to run task in privileged mode\. payload\.capabilities\.privileged needs the scope docker-worker:capability:privileged .*in task\.scopes/);
  assert.doesNotMatch(log, /=== Task Starting ===/);
});

test('privileged on a worker without allowPrivileged: exception/malformed-payload saying the pool does not allow it', async () => {
  const taskId = await refusing.submit({ image: TASKENV_PASS, command: ['echo', 'should not run'], maxRunTime: 60, capabilities: { privileged: true } }, { scopes: [privilegedScope] });
  const status = await refusing.waitForResolution(taskId);
  assert.equal(status.state, 'exception');
  assert.equal(status.runs[0].reasonResolved, 'malformed-payload');
  const log = await refusing.taskLog(taskId);
  assert.match(log, new RegExp(`\\[taskcluster:error\\] payload\\.capabilities\\.privileged is true, but worker pool ${refusing.taskQueueId} does not allow privileged containers`));
  assert.doesNotMatch(log, /=== Task Starting ===/);
});

// capabilities.disableSeccomp: the kernel reports the seccomp mode in /proc/self/status
// (2: a filter, Docker's default profile; 0: none).
const seccompProbe = ['/bin/sh', '-c', 'grep Seccomp: /proc/self/status'];
const seccompScope = 'docker-worker:capability:disableSeccomp';
const seccompMode = (log: string) => /^Seccomp:\s+(\d)\r?$/m.exec(log)?.[1];

test('disableSeccomp with the scope on a worker configured with allowDisableSeccomp runs without a seccomp filter', async (t) => {
  const ordinary = await seccompAllowing.submit({ image: TASKENV_PASS, command: seccompProbe, maxRunTime: 60 });
  const unconfined = await seccompAllowing.submit({ image: TASKENV_PASS, command: seccompProbe, maxRunTime: 60, capabilities: { disableSeccomp: true } }, { scopes: [seccompScope] });
  assert.equal((await seccompAllowing.waitForResolution(ordinary)).state, 'completed');
  assert.equal((await seccompAllowing.waitForResolution(unconfined)).state, 'completed', await seccompAllowing.taskLog(unconfined));
  assert.equal(seccompMode(await seccompAllowing.taskLog(unconfined)), '0');
  if (seccompMode(await seccompAllowing.taskLog(ordinary)) !== '2') {
    t.skip('this Docker daemon runs containers without seccomp anyway, so the difference cannot be seen');
    return;
  }
});

test('disableSeccomp without the scope: exception/malformed-payload naming the scope', async () => {
  const taskId = await seccompAllowing.submit({ image: TASKENV_PASS, command: ['true'], maxRunTime: 60, capabilities: { disableSeccomp: true } });
  const status = await seccompAllowing.waitForResolution(taskId);
  assert.equal(status.runs[0]!.reasonResolved, 'malformed-payload');
  assert.match(await seccompAllowing.taskLog(taskId), /payload\.capabilities\.disableSeccomp needs the scope docker-worker:capability:disableSeccomp .*in task\.scopes/);
});

test('disableSeccomp on a worker without allowDisableSeccomp (the default): refused, naming the setting', async () => {
  const taskId = await refusing.submit({ image: TASKENV_PASS, command: ['true'], maxRunTime: 60, capabilities: { disableSeccomp: true } }, { scopes: [seccompScope] });
  const status = await refusing.waitForResolution(taskId);
  assert.equal(status.runs[0]!.reasonResolved, 'malformed-payload');
  assert.match(await refusing.taskLog(taskId), new RegExp(`payload\\.capabilities\\.disableSeccomp is true, but worker pool ${refusing.taskQueueId} does not allow containers without a seccomp profile \\(worker configuration allowDisableSeccomp\\)`));
});
