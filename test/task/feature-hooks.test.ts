// The feature seam as a feature author sees it: a throwaway feature, registered from this file
// alone (TaskRunDeps.features = the registry + it), has each hook called once, in order, on
// every path a run can take: success, failure, cancel, shutdown, a container that cannot be
// created, and a hook that throws (cleanup still runs). A short claim shows credentialsChanged
// getting each reclaim's credentials. A real embedded deployment, engine, image store and caches.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import taskcluster from 'taskcluster-client';
import { startEmbedded, type EmbeddedDeployment } from '../../lib/embedded/server.ts';
import { randomBytes } from 'node:crypto';
import { NOTHING_TO_CLEAN, type Feature, type TaskFeature } from '../../lib/features/feature.ts';
import { FEATURES } from '../../lib/features/registry.ts';
import { ImageStore } from '../../lib/images/image-store.ts';
import { VolumeCaches } from '../../lib/cache/volume-cache.ts';
import { LiveLogServer } from '../../lib/log/live-log-server.ts';
import { silentLog } from '../../lib/log/worker-log.ts';
import { queueClient, type ClaimResponse } from '../../lib/queue/taskcluster.ts';
import { TaskRun, type TaskRunDeps } from '../../lib/task/run.ts';
import { TASKENV_PASS, removeOwnedBy, testEngine, testWorkerId } from '../support/docker.ts';

const engine = testEngine();
const workerId = testWorkerId('hooks');
let d: EmbeddedDeployment;
let liveLogs: LiveLogServer;
let stateDir: string;
let images: ImageStore;
let caches: VolumeCaches;
before(async () => {
  stateDir = mkdtempSync(path.join(os.tmpdir(), 'feature-hooks-'));
  mkdirSync(path.join(stateDir, 'tmp'));
  d = await startEmbedded({ stateDir: path.join(stateDir, 'embedded'), port: 0, log: silentLog, claimWorkWaitSeconds: 1 });
  liveLogs = await LiveLogServer.start({ log: silentLog });
  images = new ImageStore({ engine, log: silentLog, stateDir, rootUrl: d.rootUrl, registries: {}, pullRetries: 0, pullBaseDelayMs: 10 });
  caches = await VolumeCaches.open({ dir: path.join(stateDir, 'caches'), workerPool: 'p/hooks', log: silentLog });
});
after(async () => {
  await removeOwnedBy(engine, workerId);
  await liveLogs.close();
  await d.close();
  rmSync(stateDir, { recursive: true, force: true });
});

interface Recording {
  calls: string[];
  /** Arguments some hooks were given. */
  exit?: { exitCode: number; interrupted: boolean };
  uploaded?: string[];
  credentials: string[];
  cancelled?: boolean;
}

type Behaviour = Partial<{ [K in keyof TaskFeature]: (run: () => TaskRun) => Promise<unknown> }>;

/** A feature that records its hooks; `behaviour` adds to (or replaces) what a hook does. */
function throwaway(recording: Recording, runOf: () => TaskRun, behaviour: Behaviour = {}): Feature<{ marker: string }> {
  const called = async (hook: keyof TaskFeature): Promise<any> => {
    recording.calls.push(hook);
    return behaviour[hook]?.(runOf);
  };
  return {
    name: 'throwaway',
    defaultEnabled: true,
    plan: () => ({ options: { marker: 'planned' }, container: { env: { THROWAWAY: 'on' } } }),
    forTask: (ctx) => {
      assert.equal(ctx.options.marker, 'planned');
      return {
        beforeCreate: () => called('beforeCreate'),
        afterCreate: () => called('afterCreate'),
        afterStart: () => called('afterStart'),
        credentialsChanged: async (credentials) => { recording.credentials.push(credentials.accessToken); },
        afterExit: async (exit) => { recording.exit = { exitCode: exit.exitCode, interrupted: exit.interrupted }; return called('afterExit'); },
        afterArtifacts: async (uploaded) => { recording.uploaded = uploaded.map((u) => `${u.name} ${u.sha256.length}`); return called('afterArtifacts'); },
        logComplete: async (log) => { recording.cancelled = log.cancelled; return called('logComplete'); },
        cleanup: () => called('cleanup'),
      };
    },
  };
}

function deps(feature: Feature<any>, deployment = d): TaskRunDeps {
  return {
    rootUrl: deployment.rootUrl,
    worker: { provisionerId: 'p', workerType: 'hooks', workerGroup: 'g', workerId, rootUrl: deployment.rootUrl, instanceType: 'local', publicIp: '127.0.0.1', allowPrivileged: false, devices: {}, workerVersion: '0', hostname: 'h' },
    images, caches, expandScopes: async (s) => s, engine, liveLogs, log: silentLog, statusQueue: queueClient(deployment),
    storageType: 'object', uploadRetries: 0, reclaimMarginSeconds: 60, cancelPollSeconds: 0, tmpDir: path.join(stateDir, 'tmp'),
    features: [...FEATURES, feature],
  };
}

async function claimed(payload: Record<string, unknown>, deployment = d): Promise<{ claim: ClaimResponse; queue: any }> {
  const queue = new taskcluster.Queue({ rootUrl: deployment.rootUrl, credentials: deployment.credentials });
  const taskId = taskcluster.slugid();
  const taskQueueId = `p/hooks-${taskId.slice(0, 6).toLowerCase().replace(/[^a-z0-9]/g, 'x')}`;
  await queue.createTask(taskId, {
    taskQueueId, created: new Date().toISOString(), deadline: taskcluster.fromNow('1 hour').toISOString(),
    metadata: { name: 't', description: 't', owner: 'a@b.c', source: 'https://localhost/' },
    payload: { image: TASKENV_PASS, maxRunTime: 60, ...payload },
  });
  const { tasks } = await queue.claimWork(taskQueueId, { workerGroup: 'g', workerId, tasks: 1 });
  assert.equal(tasks.length, 1);
  return { claim: tasks[0], queue };
}

async function runWith(payload: Record<string, unknown>, behaviour: Behaviour = {}, deployment = d) {
  const recording: Recording = { calls: [], credentials: [] };
  const { claim, queue } = await claimed(payload, deployment);
  let run!: TaskRun;
  run = new TaskRun(deps(throwaway(recording, () => run, behaviour), deployment), claim);
  await run.run();
  const taskId = claim.status.taskId;
  const { status } = await queue.status(taskId);
  const containers = (await engine.listOwnedContainers(workerId)).filter((c) => c.labels['taskcluster.task-id'] === taskId);
  const url = queue.buildSignedUrl(queue.getArtifact, taskId, 0, 'public/logs/live.log') as string;
  return { recording, run: status.runs[0], containers, log: await (await fetch(url)).text(), queue, taskId };
}

test("the run's credentials (access token, certificate signature) and the worker's own token are masked in the task log", async () => {
  const workerToken = `worker-access-token-${randomBytes(8).toString('hex')}`;
  const leaky: Feature<Record<string, never>> = {
    name: 'leaky', defaultEnabled: true, plan: () => ({ options: {} }),
    forTask: (ctx) => ({
      async afterStart() {
        const { accessToken, certificate } = ctx.credentials();
        ctx.taskLog.info(`token: ${accessToken}`);
        ctx.taskLog.info(`signature: ${JSON.parse(certificate!).signature}`);
        ctx.taskLog.info(`worker token: ${workerToken}`);
      },
      cleanup: NOTHING_TO_CLEAN,
    }),
  };
  const { claim, queue } = await claimed({ command: ['true'] });
  assert.ok(claim.credentials.certificate, 'temporary credentials carry a certificate');
  const run = new TaskRun({ ...deps(leaky), maskedSecrets: [workerToken] }, claim);
  await run.run();
  const url = queue.buildSignedUrl(queue.getArtifact, claim.status.taskId, 0, 'public/logs/live.log') as string;
  const log = await (await fetch(url)).text();
  for (const label of ['token', 'signature', 'worker token']) assert.match(log, new RegExp(`\\] ${label}: \\[\\*{5}\\]$`, 'm'), log);
  const signature = JSON.parse(claim.credentials.certificate!).signature as string;
  for (const secret of [claim.credentials.accessToken, signature, workerToken]) assert.ok(!log.includes(secret), `the log shows ${secret}`);
});

const EVERY_HOOK = ['beforeCreate', 'afterCreate', 'afterStart', 'afterExit', 'afterArtifacts', 'logComplete', 'cleanup'];

test('success: every hook once, in order; the feature\'s env reaches the container', async () => {
  const { recording, run, containers, log } = await runWith({
    command: ['/bin/sh', '-c', 'echo "feature says $THROWAWAY"; mkdir -p /out; echo hi > /out/a.txt'],
    artifacts: { 'public/a.txt': { type: 'file', path: '/out/a.txt' } },
  });
  assert.equal(`${run.state}/${run.reasonResolved}`, 'completed/completed');
  assert.deepEqual(recording.calls, EVERY_HOOK);
  assert.deepEqual(recording.exit, { exitCode: 0, interrupted: false });
  assert.deepEqual(recording.uploaded, ['public/a.txt 64'], 'the uploaded artifact, with its sha256');
  assert.equal(recording.cancelled, false);
  assert.match(log, /feature says on/);
  assert.deepEqual(containers, [], 'the container was removed');
});

test('failure: every hook once, in order', async () => {
  const { recording, run } = await runWith({ command: ['/bin/sh', '-c', 'exit 3'] });
  assert.equal(`${run.state}/${run.reasonResolved}`, 'failed/failed');
  assert.deepEqual(recording.calls, EVERY_HOOK);
  assert.deepEqual(recording.exit, { exitCode: 3, interrupted: false });
});

test('cancel while the container runs: no artifacts hook; the log hook hears it was cancelled; cleanup', async () => {
  const { recording, run, containers } = await runWith({ command: ['/bin/sh', '-c', 'sleep 30'] }, {
    afterStart: async (runOf) => {
      const r = runOf();
      await new taskcluster.Queue({ rootUrl: d.rootUrl, credentials: d.credentials }).cancelTask(r.taskId);
      r.interrupt({ kind: 'cancel', message: 'Task was canceled by another entity.' });
    },
  });
  assert.equal(`${run.state}/${run.reasonResolved}`, 'exception/canceled');
  assert.deepEqual(recording.calls, ['beforeCreate', 'afterCreate', 'afterStart', 'afterExit', 'logComplete', 'cleanup']);
  assert.equal(recording.exit?.interrupted, true);
  assert.equal(recording.cancelled, true);
  assert.deepEqual(containers, []);
});

test('shutdown while the container runs: worker-shutdown; no artifacts hook; cleanup', async () => {
  const { recording, run, containers } = await runWith({ command: ['/bin/sh', '-c', 'sleep 30'] }, {
    afterStart: async (runOf) => { runOf().interrupt({ kind: 'shutdown' }); },
  });
  assert.equal(`${run.state}/${run.reasonResolved}`, 'exception/worker-shutdown');
  assert.deepEqual(recording.calls, ['beforeCreate', 'afterCreate', 'afterStart', 'afterExit', 'logComplete', 'cleanup']);
  assert.equal(recording.exit?.interrupted, true);
  assert.equal(recording.cancelled, false);
  assert.deepEqual(containers, []);
});

test('the container cannot be created (a feature added a bad bind): beforeCreate, then only the log and cleanup', async () => {
  const { recording, run, log } = await runWith({ command: ['true'] }, {
    beforeCreate: async () => ({ container: { binds: ['not-an-absolute-path'] } }),
  });
  assert.equal(`${run.state}/${run.reasonResolved}`, 'failed/failed');
  assert.deepEqual(recording.calls, ['beforeCreate', 'logComplete', 'cleanup']);
  assert.match(log, /Failure to properly start execution environment\./);
});

test('a feature refuses the task before anything is created: malformed-payload with its sentence', async () => {
  const { recording, run, log } = await runWith({ command: ['true'] }, {
    beforeCreate: async () => ({ refusal: 'throwaway cannot run this task; remove features.throwaway.' }),
  });
  assert.equal(`${run.state}/${run.reasonResolved}`, 'exception/malformed-payload');
  assert.deepEqual(recording.calls, ['beforeCreate', 'logComplete', 'cleanup']);
  assert.match(log, /\[taskcluster:error\] throwaway cannot run this task; remove features\.throwaway\./);
});

test('a hook that throws: the container is stopped, the run is internal-error, cleanup still runs', async () => {
  const { recording, run, containers, log } = await runWith({ command: ['/bin/sh', '-c', 'sleep 30'] }, {
    afterStart: async () => { throw new Error('the throwaway sidecar did not come up'); },
  });
  assert.equal(`${run.state}/${run.reasonResolved}`, 'exception/internal-error');
  assert.deepEqual(recording.calls, ['beforeCreate', 'afterCreate', 'afterStart', 'logComplete', 'cleanup']);
  assert.match(log, /Worker error: the throwaway feature failed afterStart: the throwaway sidecar did not come up/);
  assert.deepEqual(containers, []);
});

test('a feature turned off in the payload gets no hook at all', async () => {
  const { recording, run } = await runWith({ command: ['true'], features: { throwaway: false } });
  assert.equal(`${run.state}/${run.reasonResolved}`, 'completed/completed');
  assert.deepEqual(recording.calls, []);
});

test('credentialsChanged gets each reclaim\'s new credentials', async () => {
  const short = await startEmbedded({ stateDir: path.join(stateDir, 'embedded-short'), port: 0, log: silentLog, claimWorkWaitSeconds: 1, claimTimeoutSeconds: 3 });
  try {
    const { recording, run } = await runWith({ command: ['/bin/sh', '-c', 'sleep 2'] }, {}, short);
    assert.equal(`${run.state}/${run.reasonResolved}`, 'completed/completed');
    assert.deepEqual(recording.calls, EVERY_HOOK);
    assert.ok(recording.credentials.length >= 1, 'reclaimed at least once during a 2 s task on a 3 s claim');
    assert.equal(new Set(recording.credentials).size, recording.credentials.length, 'each reclaim brought new credentials');
  } finally {
    await short.close();
  }
});
