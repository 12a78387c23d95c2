// A worker killed with SIGKILL mid-task, started again on the same state directory: the run it
// held is resolved exception/worker-shutdown at once (not at claim expiry, 20 minutes here),
// with the log it had written and a line saying what happened; the queue reruns the task, and
// the restarted worker runs it. Also: a journal entry whose claim already expired is only
// forgotten, and a run that completed normally leaves no entry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import taskcluster from 'taskcluster-client';
import { TASKENV_PASS, testEngine } from '../support/docker.ts';
import { externalDeployment } from '../support/deployment.ts';
import { RECOVERY_LINE } from '../../lib/task/recover-runs.ts';

const engine = testEngine();
const repoRoot = path.resolve(import.meta.dirname, '../..');

interface Started { child: ChildProcess; output: () => string; exited: Promise<unknown> }

function startWorkerProcess(env: NodeJS.ProcessEnv): Started {
  const child = spawn(path.join(repoRoot, 'bin/worker'), ['start'], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => { output += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { output += d.toString(); });
  return { child, output: () => output, exited: once(child, 'exit') };
}

async function until<T>(what: string, ms: number, check: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(100);
  }
}

test('SIGKILL during a task: the restarted worker resolves the run worker-shutdown at once, with its log, and runs the task again', async () => {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'worker-crash-'));
  const suffix = randomBytes(4).toString('hex');
  const workerType = `crash-${suffix}`;
  const workerId = `crash-w-${suffix}`;
  const external = externalDeployment();
  const env = {
    ...process.env, WORKER_STATE_DIR: stateDir, WORKER_ID: workerId, WORKER_PROVISIONER_ID: 'test-prov', WORKER_TYPE: workerType,
    TASKCLUSTER_ROOT_URL: external?.rootUrl ?? '', TASKCLUSTER_CLIENT_ID: external?.credentials.clientId ?? '',
    TASKCLUSTER_ACCESS_TOKEN: external?.credentials.accessToken ?? '',
  };
  const credentialsFile = path.join(stateDir, 'embedded', 'credentials.json');
  let worker = startWorkerProcess(env);
  try {
    await until('the worker to start', 30_000, () => ((external || existsSync(credentialsFile)) && /worker started/.test(worker.output()) ? true : undefined));
    const credentials = external
      ? { rootUrl: external.rootUrl, ...external.credentials }
      : JSON.parse(readFileSync(credentialsFile, 'utf8')) as { rootUrl: string; clientId: string; accessToken: string };
    const queueFor = (rootUrl: string) => new taskcluster.Queue({ rootUrl, credentials: { clientId: credentials.clientId, accessToken: credentials.accessToken } });
    const taskId = taskcluster.slugid();
    await queueFor(credentials.rootUrl).createTask(taskId, {
      taskQueueId: `test-prov/${workerType}`,
      created: new Date().toISOString(),
      deadline: taskcluster.fromNow('1 hour').toISOString(),
      metadata: { name: 'crash recovery', description: 'SIGKILL test', owner: 'test@localhost.localdomain', source: 'https://localhost/test' },
      payload: { image: TASKENV_PASS, command: ['/bin/sh', '-c', 'if [ "$RUN_ID" = 0 ]; then echo working on run 0; sleep 120; fi; echo done on run $RUN_ID'], maxRunTime: 300 },
    });
    await until('the container to run', 60_000, async () => (await engine.listOwnedContainers(workerId)).some((c) => c.labels['taskcluster.task-id'] === taskId && c.state === 'running') || undefined);
    await sleep(500); // the first line reaches the log file
    assert.equal(readdirSync(path.join(stateDir, 'runs')).filter((f) => f.endsWith('.json')).length, 1, 'the run is in the journal');

    worker.child.kill('SIGKILL');
    await worker.exited;
    const killedAt = Date.now();

    worker = startWorkerProcess(env);
    await until('the restarted worker', 30_000, () => (/worker started/.test(worker.output()) ? true : undefined));
    // The embedded deployment came back on another port: read its rootUrl again.
    const rootUrl = external ? external.rootUrl : (JSON.parse(readFileSync(credentialsFile, 'utf8')) as { rootUrl: string }).rootUrl;
    const queue = queueFor(rootUrl);
    const run0 = await until('run 0 to be resolved', 60_000, async () => {
      const { status } = await queue.status(taskId);
      return status.runs[0]!.state === 'running' ? undefined : status.runs[0];
    });
    assert.equal(`${run0!.state}/${run0!.reasonResolved}`, 'exception/worker-shutdown');
    assert.ok(Date.now() - killedAt < 60_000, 'resolved well before claim expiry');
    const status = await until('the rerun to complete', 60_000, async () => {
      const { status: s } = await queue.status(taskId);
      return s.state === 'completed' ? s : undefined;
    });
    assert.equal(status.runs.length, 2);
    const log0 = await (await fetch(queue.buildSignedUrl(queue.getArtifact, taskId, 0, 'public/logs/live.log'))).text();
    assert.match(log0, /^working on run 0\r?$/m);
    assert.ok(log0.includes(RECOVERY_LINE), log0);
    const log1 = await (await fetch(queue.buildSignedUrl(queue.getArtifact, taskId, 1, 'public/logs/live.log'))).text();
    assert.match(log1, /^done on run 1\r?$/m);
    assert.match(worker.output(), /resolved a run left by an earlier process/);
    assert.deepEqual(readdirSync(path.join(stateDir, 'runs')).filter((f) => f.endsWith('.json')), [], 'nothing left in the journal');
    assert.deepEqual((await engine.listOwnedContainers(workerId)).filter((c) => c.labels['taskcluster.task-id'] === taskId && c.state === 'running'), []);
  } finally {
    if (worker.child.exitCode === null && worker.child.signalCode === null) { worker.child.kill('SIGTERM'); await worker.exited; }
    for (const c of await engine.listOwnedContainers(workerId)) await engine.removeContainer(c.id);
    rmSync(stateDir, { recursive: true, force: true });
  }
});
