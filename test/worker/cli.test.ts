// The command line a newcomer uses: `bin/worker submit` against a running worker (it fills
// the task's fields, prints the taskId and the live log URL, and with --follow streams the log
// and exits 0 only when the task completed), and `scripts/start.sh` (what `make start` runs
// after setup) with START_ONCE=1: embedded deployment, worker, hello-world to completed, exit.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import taskcluster from 'taskcluster-client';
import { WorkerHarness } from '../support/worker.ts';
import { TASKENV_PASS, removeOwnedBy, testEngine } from '../support/docker.ts';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(path.join(os.tmpdir(), 'cli-test-'));
let h: WorkerHarness;
before(async () => { h = await WorkerHarness.start(); });
after(async () => { await h?.stop(); rmSync(dir, { recursive: true, force: true }); });

function run(command: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 120_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${command} did not finish:\n${stdout}\n${stderr}`)); }, timeoutMs);
    child.on('exit', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

function submit(file: string, follow: boolean) {
  return run(path.join(repoRoot, 'bin/worker'), [
    'submit', file, '--root-url', h.rootUrl, '--provisioner-id', h.config.provisionerId, '--worker-type', h.config.workerType,
    ...(follow ? ['--follow'] : []),
  ], { TASKCLUSTER_CLIENT_ID: h.credentials.clientId, TASKCLUSTER_ACCESS_TOKEN: h.credentials.accessToken, WORKER_STATE_DIR: dir });
}

function taskFile(name: string, text: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

test('submit --follow fills the task, prints its taskId and live log URL, streams the log and exits 0 when it completed', async () => {
  const file = taskFile('hello.yml', `payload:\n  image: ${TASKENV_PASS}\n  command: [taskhost-who, hello, from, submit]\n  maxRunTime: 60\n`);
  const { code, stdout, stderr } = await submit(file, true);
  assert.equal(code, 0, `${stdout}\n${stderr}`);
  const taskId = stdout.split('\n')[0]!;
  assert.match(taskId, /^[A-Za-z0-9_-]{22}$/);
  assert.ok(stderr.includes(`live log: ${h.rootUrl}/api/queue/v1/task/${taskId}/artifacts/public%2Flogs%2Flive.log`), stderr);
  assert.match(stdout, /^hello from submit\r?$/m);
  assert.match(stdout, /Successful task run with exit code: 0/);
  assert.match(stderr, new RegExp(`task ${taskId} completed`));

  const task = await h.queue.task(taskId) as Record<string, any>;
  assert.equal(task.taskQueueId, h.taskQueueId, 'the pool comes from the flags/config');
  for (const field of ['created', 'deadline', 'expires']) assert.ok(!Number.isNaN(Date.parse(task[field])), `${field} filled: ${task[field]}`);
  assert.ok(Date.parse(task.deadline) > Date.parse(task.created));
  assert.ok(Date.parse(task.expires) > Date.parse(task.deadline));
  assert.ok(task.metadata.name && task.metadata.owner && task.metadata.source, JSON.stringify(task.metadata));
});

test('submit --follow exits 1 when the task failed, and says so', async () => {
  const file = taskFile('fail.json', JSON.stringify({ payload: { image: TASKENV_PASS, command: ['/bin/sh', '-c', 'exit 3'], maxRunTime: 60 } }));
  const { code, stdout, stderr } = await submit(file, true);
  assert.equal(code, 1, `${stdout}\n${stderr}`);
  const taskId = stdout.split('\n')[0]!;
  assert.match(stderr, new RegExp(`task ${taskId} failed`));
  assert.match(stdout, /Unsuccessful task run with exit code: 3/);
});

test('submit without --follow prints the taskId and returns at once; a given taskId is kept', async () => {
  const given = taskcluster.slugid();
  const file = taskFile('given.yml', `taskId: ${given}\npayload:\n  image: ${TASKENV_PASS}\n  command: ['true']\n  maxRunTime: 60\n`);
  const { code, stdout } = await submit(file, false);
  assert.equal(code, 0);
  assert.equal(stdout.trim(), given);
  assert.equal((await h.waitForResolution(given)).state, 'completed');
});

test('scripts/start.sh (make start) with START_ONCE=1 runs hello-world to completed, shows its log and exits 0', async () => {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'make-start-'));
  const workerId = `start-${randomBytes(4).toString('hex')}`; // the startup sweep only touches this worker's containers
  try {
    const { code, stdout, stderr } = await run(path.join(repoRoot, 'scripts/start.sh'), [], {
      START_ONCE: '1', WORKER_STATE_DIR: stateDir, WORKER_ID: workerId,
      TASKCLUSTER_ROOT_URL: '', TASKCLUSTER_CLIENT_ID: '', TASKCLUSTER_ACCESS_TOKEN: '',
    });
    assert.equal(code, 0, `${stdout}\n${stderr}`);
    assert.match(stdout, /^embedded deployment: http:\/\/127\.0\.0\.1:\d+$/m);
    assert.match(stdout, /^Hello from task \S+ on local\/docker-worker\r?$/m);
    assert.match(stdout, /Successful task run with exit code: 0/);
    assert.match(stderr, /task \S+ completed/);
  } finally {
    await removeOwnedBy(testEngine(), workerId);
    rmSync(stateDir, { recursive: true, force: true });
  }
});
