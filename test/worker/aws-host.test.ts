// `worker start --host aws` as a process, against a fake instance metadata service on loopback
// and the test's deployment: the identity line, a task run under the instance's identity, a spot
// termination notice (running task resolved worker-shutdown with its log, the worker exits) and
// the power-off command after idling.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { randomBytes } from 'node:crypto';
import { WorkerHarness } from '../support/worker.ts';
import { FakeImds, type MetadataValue } from '../support/fake-imds.ts';
import { TASKENV_PASS, removeOwnedBy, testEngine } from '../support/docker.ts';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(path.join(os.tmpdir(), 'aws-host-test-'));
let h: WorkerHarness;
const cleanups: (() => Promise<void>)[] = [];
before(async () => { h = await WorkerHarness.start({ noWorker: true }); });
after(async () => {
  for (const c of cleanups) await c();
  await h?.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface LogLine { message: string; [k: string]: unknown }

/** An instance (fake IMDS with plain user-data for this worker) and the worker started on it. */
async function startOnInstance(userData: Record<string, unknown> = {}, metadata: Record<string, MetadataValue> = {}) {
  const suffix = randomBytes(4).toString('hex');
  const instanceId = `i-0${suffix}00000000`;
  const workerType = `aws-${suffix}`;
  const imds = await FakeImds.start({
    ...FakeImds.instance({
      rootUrl: h.rootUrl, taskcluster: { clientId: h.credentials.clientId, accessToken: h.credentials.accessToken },
      provisionerId: h.config.provisionerId, workerType, stateDir: path.join(dir, suffix),
      'host.spotPollSeconds': 1, 'task.cancelPollSeconds': 1, ...userData,
    }),
    '/latest/meta-data/instance-id': instanceId,
    ...metadata,
  });
  const child = spawn(path.join(repoRoot, 'bin/worker'), ['start', '--host', 'aws'], {
    cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH, HOME: process.env.HOME, WORKER_AWS_METADATA_URL: imds.url },
  });
  const lines: LogLine[] = [];
  const stderr: string[] = [];
  const waiters = new Set<() => void>();
  readline.createInterface({ input: child.stderr }).on('line', (l) => {
    stderr.push(l);
    try { lines.push(JSON.parse(l) as LogLine); } catch { /* not a log line */ }
    for (const w of waiters) w();
  });
  child.stdout.resume();
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const logEvent = (message: string, where: (l: LogLine) => boolean = () => true, timeoutMs = 60_000) => new Promise<LogLine>((resolve, reject) => {
    const check = () => {
      const found = lines.find((l) => l.message === message && where(l));
      if (found) { clearTimeout(timer); waiters.delete(check); resolve(found); }
    };
    const timer = setTimeout(() => { waiters.delete(check); reject(new Error(`no "${message}" in the worker log:\n${stderr.slice(-20).join('\n')}`)); }, timeoutMs);
    waiters.add(check);
    check();
  });
  const submit = (payload: Record<string, unknown>) => h.submit(payload, { taskQueueId: `${h.config.provisionerId}/${workerType}` });
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) { child.kill('SIGKILL'); await exited; }
    await imds.close();
    await removeOwnedBy(testEngine(), instanceId);
  });
  return { imds, child, exited, logEvent, submit, instanceId, stderr };
}

test('the worker takes its identity from the instance metadata and its config from the user-data, and runs tasks as that instance', async () => {
  const w = await startOnInstance();
  const identity = await w.logEvent('worker identity');
  assert.equal(identity.host, 'aws');
  assert.equal(identity.workerId, w.instanceId);
  assert.equal(identity.workerGroup, 'us-east-1');
  assert.equal(identity.instanceType, 'c5.2xlarge');
  assert.equal(identity.region, 'us-east-1');
  assert.equal(identity.publicIp, '203.0.113.9');
  assert.equal(identity.privateIp, '172.31.5.9');
  assert.equal(identity.configSource, 'EC2 instance metadata and user-data config');
  assert.ok(w.imds.requests.filter((r) => r.method === 'GET').every((r) => r.token), 'IMDSv2 only');
  const taskId = await w.submit({
    image: TASKENV_PASS, command: ['/bin/sh', '-c', 'echo "$TASKCLUSTER_INSTANCE_TYPE $TASKCLUSTER_WORKER_LOCATION" > /env.txt'], maxRunTime: 60,
    artifacts: { 'public/env.txt': { type: 'file', path: '/env.txt' } },
  });
  const status = await h.waitForResolution(taskId);
  assert.equal(status.state, 'completed');
  assert.equal(status.runs[0]!.workerId, w.instanceId);
  assert.equal(status.runs[0]!.workerGroup, 'us-east-1');
  assert.equal((await h.artifact(taskId, 0, 'public/env.txt')).text, 'c5.2xlarge {"cloud":"aws","region":"us-east-1","availabilityZone":"us-east-1b"}\n');
  w.child.kill('SIGTERM');
  assert.equal(await w.exited, 0);
});

test('a spot termination notice: the running task is resolved worker-shutdown with its log, and the worker exits', async () => {
  // The live log listens on every address, as deploy/config/aws.yml has it, with no publicUrl.
  const w = await startOnInstance({ liveLog: { host: '0.0.0.0', port: 0 } });
  const taskId = await w.submit({ image: TASKENV_PASS, command: ['/bin/sh', '-c', 'echo working; sleep 120'], maxRunTime: 300 });
  await w.logEvent('claimed task', (l) => l.taskId === taskId);
  await h.waitForRunning(taskId);
  // Readers elsewhere are sent to the instance's public address, not to loopback (the reference
  // may take a moment after the run became running).
  let location = '';
  for (const end = Date.now() + 10_000; !location && Date.now() < end; await new Promise((r) => setTimeout(r, 200))) {
    const res = await fetch(h.queue.buildSignedUrl(h.queue.getArtifact, taskId, 0, 'public/logs/live.log') as string, { redirect: 'manual' });
    location = res.headers.get('location') ?? '';
  }
  assert.match(location, /^http:\/\/203\.0\.113\.9:\d+\/log\//);
  w.imds.values.set('/latest/meta-data/spot/instance-action', JSON.stringify({ action: 'terminate', time: new Date(Date.now() + 120_000).toISOString() }));
  await w.logEvent('spot termination notice: stopping');
  assert.equal(await w.exited, 0);
  const run = await h.waitForRun(taskId, 0, 10_000);
  assert.equal(run.state, 'exception');
  assert.equal(run.reasonResolved, 'worker-shutdown');
  assert.match(await h.taskLog(taskId), /working[\s\S]*Reason: worker-shutdown/);
});

test('idle past shutdown.afterIdleSeconds: the worker stops and runs the power-off command', async () => {
  const marker = path.join(dir, `powered-off-${randomBytes(3).toString('hex')}`);
  const w = await startOnInstance({ shutdown: { afterIdleSeconds: 1 }, 'shutdown.powerOffCommand': `touch ${marker}` });
  assert.equal(await w.exited, 0);
  assert.ok(existsSync(marker), 'the power-off command ran');
  await w.logEvent('idle: powering off');
});

test('SIGTERM while the worker is still starting (the metadata service slow to answer): it stops cleanly and says so', async () => {
  const w = await startOnInstance({}, { '/latest/meta-data/instance-id': { delayMs: 60_000, value: 'i-0slow' } });
  // Starting: the metadata reads have begun (the user-data answered; the instance id is slow).
  for (const end = Date.now() + 20_000; !w.imds.requests.some((r) => r.path === '/latest/user-data') && Date.now() < end;) await new Promise((r) => setTimeout(r, 50));
  w.child.kill('SIGTERM');
  assert.equal(await w.exited, 0, 'a clean exit, not death by the signal');
  assert.ok(w.stderr.some((l) => l.includes('SIGTERM received while starting: stopped before claiming any task')), w.stderr.join('\n'));
});

test('worker keys --host aws makes and prints the keys at the paths the user-data names', async () => {
  const keyDir = mkdtempSync(path.join(dir, 'keys-'));
  const paths = { openpgpPrivateKeyPath: path.join(keyDir, 'pgp.asc'), ed25519PrivateKeyPath: path.join(keyDir, 'ed.key') };
  const imds = await FakeImds.start(FakeImds.instance({ stateDir: path.join(dir, 'keys-state'), keys: paths }));
  cleanups.push(() => imds.close());
  const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    // The keys unit passes the worker's DOCKER_WORKER_OPTS, whatever start flags they hold.
    const child = spawn(path.join(repoRoot, 'bin/worker'), ['keys', '--host', 'aws', '--capacity', '2'], {
      cwd: repoRoot, env: { PATH: process.env.PATH, HOME: process.env.HOME, WORKER_AWS_METADATA_URL: imds.url },
    });
    let stdout = ''; let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stderr, `created ${paths.openpgpPrivateKeyPath}\ncreated ${paths.ed25519PrivateKeyPath}\n`);
  assert.ok(result.stdout.includes(`# ed25519 public key (${paths.ed25519PrivateKeyPath})`), result.stdout);
  assert.ok(!existsSync(path.join(dir, 'keys-state', 'keys')), 'nothing under the state directory');
});
