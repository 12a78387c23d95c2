// The TaskRun contract at its edges (DESIGN, after Buildkite's job runner): interrupt() may
// come at any time, even before run() has opened the task log; the log still says why, and
// the run is resolved the way the interruption asks. A real embedded deployment and engine;
// the image store and caches are never reached (the run stops before the prepare stage).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import taskcluster from 'taskcluster-client';
import { startEmbedded, type EmbeddedDeployment } from '../../lib/embedded/server.ts';
import { LiveLogServer } from '../../lib/log/live-log-server.ts';
import { silentLog } from '../../lib/log/worker-log.ts';
import { queueClient, type ClaimResponse } from '../../lib/queue/taskcluster.ts';
import { TaskRun, type TaskRunDeps } from '../../lib/task/run.ts';
import { TASKENV_PASS, testEngine } from '../support/docker.ts';

let d: EmbeddedDeployment;
let liveLogs: LiveLogServer;
let stateDir: string;
let queue: any;
before(async () => {
  stateDir = mkdtempSync(path.join(os.tmpdir(), 'task-run-'));
  mkdirSync(path.join(stateDir, 'tmp'));
  d = await startEmbedded({ stateDir: path.join(stateDir, 'embedded'), port: 0, log: silentLog, claimWorkWaitSeconds: 1 });
  liveLogs = await LiveLogServer.start({ log: silentLog });
  queue = new taskcluster.Queue({ rootUrl: d.rootUrl, credentials: d.credentials });
});
after(async () => { await liveLogs.close(); await d.close(); rmSync(stateDir, { recursive: true, force: true }); });

function deps(): TaskRunDeps {
  return {
    rootUrl: d.rootUrl,
    worker: { provisionerId: 'p', workerType: 'task-run', workerGroup: 'g', workerId: 'w', rootUrl: d.rootUrl, instanceType: 'local', publicIp: '127.0.0.1', allowPrivileged: false, devices: {}, workerVersion: '0', hostname: 'h' },
    images: {} as never, caches: {} as never, // never reached: the run stops before prepare
    expandScopes: async (s) => s, engine: testEngine(), liveLogs, log: silentLog, statusQueue: queueClient(d),
    storageType: 'object', uploadRetries: 0, reclaimMarginSeconds: 60, cancelPollSeconds: 0, tmpDir: path.join(stateDir, 'tmp'),
  };
}

async function claimed(): Promise<ClaimResponse> {
  const taskId = taskcluster.slugid();
  const taskQueueId = `p/task-run-${taskId.slice(0, 6).toLowerCase().replace(/[^a-z0-9]/g, 'x')}`;
  await queue.createTask(taskId, {
    taskQueueId, created: new Date().toISOString(), deadline: taskcluster.fromNow('1 hour').toISOString(),
    metadata: { name: 't', description: 't', owner: 'a@b.c', source: 'https://localhost/' },
    payload: { image: TASKENV_PASS, command: ['echo', 'never'], maxRunTime: 60 },
  });
  const { tasks } = await queue.claimWork(taskQueueId, { workerGroup: 'g', workerId: 'w', tasks: 1 });
  assert.equal(tasks.length, 1);
  return tasks[0];
}

async function logOf(taskId: string): Promise<string> {
  const url = queue.buildSignedUrl(queue.getArtifact, taskId, 0, 'public/logs/live.log') as string;
  return (await fetch(url)).text();
}

test('shutdown before run(): worker-shutdown, and the log (written later) says so after its header', async () => {
  const claim = await claimed();
  const run = new TaskRun(deps(), claim);
  run.interrupt({ kind: 'shutdown' });
  await run.run();
  const { status } = await queue.status(claim.status.taskId);
  assert.equal(status.runs[0].reasonResolved, 'worker-shutdown');
  const log = await logOf(claim.status.taskId);
  assert.match(log, /Task ID: [\s\S]*\n\[taskcluster:error\] Task has been aborted prematurely\. Reason: worker-shutdown\n/);
  assert.doesNotMatch(log, /=== Task Starting ===/);
});

test('cancel before run(): nothing is reported, the log says the task was cancelled', async () => {
  const claim = await claimed();
  await queue.cancelTask(claim.status.taskId);
  const run = new TaskRun(deps(), claim);
  run.interrupt({ kind: 'cancel', message: 'Task was canceled by another entity.' });
  await run.run();
  const { status } = await queue.status(claim.status.taskId);
  assert.deepEqual(status.runs.map((r: any) => `${r.state}/${r.reasonResolved}`), ['exception/canceled']);
  assert.match(await logOf(claim.status.taskId), /\[taskcluster:error\] Task was canceled by another entity\./);
});
