// The worker process: composes the deployment (real or embedded), the Docker engine, the
// live log server and the claim loop; sweeps what an earlier process left behind; and shuts
// down cleanly — running tasks are resolved worker-shutdown after their logs are uploaded.
import os from 'node:os';
import path from 'node:path';
import { mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import type { WorkerConfig } from './config/load.ts';
import type { WorkerLog } from './log/worker-log.ts';
import { Engine } from './docker/engine.ts';
import { LABEL_COMMITTED_IMAGE, LABEL_TASK_ID } from './docker/labels.ts';
import { LiveLogServer } from './log/live-log-server.ts';
import { ClaimLoop } from './queue/claim-loop.ts';
import { queueClient, shareKeepAliveConnections, type ClaimResponse, type Credentials, type Deployment } from './queue/taskcluster.ts';
import { WorkerCredentials } from './queue/worker-credentials.ts';
import { statusCodeOf } from './retry/with-retries.ts';
import { TaskClaim } from './queue/task-claim.ts';
import { SupersedingGroup, type SupersedingOptions } from './queue/superseder.ts';
import { TaskRun, type TaskRunDeps } from './task/run.ts';
import { providedFeatures } from './features/registry.ts';
import { ImageStore } from './images/image-store.ts';
import { VolumeCaches } from './cache/volume-cache.ts';
import { authScopeExpander } from './scopes/auth-expander.ts';
import type { ScopeExpander } from './scopes/task-scopes.ts';
import { PurgePoller, purgeCacheClient } from './cache/purge-poller.ts';
import { RunJournal } from './queue/run-journal.ts';
import { recoverRuns } from './task/recover-runs.ts';
import { DiskBudget } from './cache/disk-budget.ts';
import { ImageStoreRecords } from './cache/image-store-records.ts';
import type { WorkerSettings } from './task/plan.ts';
import { ed25519PublicKeyBase64, openWorkerKeys, workerKeyPaths } from './crypto/worker-keys.ts';
import { reachableHost } from './host/reachable-host.ts';
import { IdleTrim, exposedGarbageCollector, loadAllocatorTrim } from './memory/allocator-trim.ts';

/** When, after its last task, the idle worker hands back the heap memory glibc kept. */
const IDLE_TRIM_DELAYS_MS = [5_000, 30_000, 120_000];

export const WORKER_VERSION: string = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version;

export interface RunningWorker {
  /** The deployment as the worker started with it (its credentials may since have been replaced). */
  deployment: Deployment;
  liveLogs: LiveLogServer;
  /** Resolves when the worker has stopped (after shutdown() or idle shutdown) with the reason it stopped. */
  stopped: Promise<void>;
  /** Why the worker stopped or is stopping ('idle' after shutdown.afterIdleSeconds without a task). */
  readonly stopReason: string | undefined;
  /**
   * Stops claiming and waits for the running tasks. By default they are interrupted (resolved
   * worker-shutdown after their logs are uploaded); with finishTasks they run to their end. A
   * later call without finishTasks interrupts the tasks still running.
   */
  shutdown(reason: string, options?: { finishTasks?: boolean }): Promise<void>;
  /** The worker's own credentials from now on (the next claimWork uses them). */
  replaceCredentials(credentials: Credentials): void;
  runningTasks(): number;
}

export function workerSettings(config: WorkerConfig, rootUrl: string): WorkerSettings {
  const devices: WorkerSettings['devices'] = {};
  for (const [name, d] of Object.entries(config.devices)) devices[name as keyof WorkerSettings['devices']] = { enabled: d.enabled, path: d.path };
  return {
    provisionerId: config.provisionerId, workerType: config.workerType, workerGroup: config.workerGroup, workerId: config.workerId,
    rootUrl, instanceType: config.host.instanceType, publicIp: config.host.publicIp, workerLocation: config.host.workerLocation || undefined,
    privateIp: config.host.privateIp || hostPrivateIp() || config.host.publicIp,
    ...(config.host.instanceId ? { instanceId: config.host.instanceId } : {}), ...(config.host.region ? { region: config.host.region } : {}),
    chainOfTrustOpenpgp: config.chainOfTrust.openpgpSignature,
    allowPrivileged: config.allowPrivileged, allowDisableSeccomp: config.allowDisableSeccomp, devices, shmSizeBytes: config.shmSizeBytes,
    workerVersion: WORKER_VERSION, hostname: os.hostname(), defaultLogName: config.task.defaultLogName,
    sidecars: config.sidecars,
    ...(config.relengAPI.url ? { relengAPI: { url: config.relengAPI.url, token: config.relengAPI.token } } : {}),
    interactive: {
      host: config.interactive.host, publicHost: config.interactive.publicHost || reachableHost(config.interactive.host, config.host),
      ...(config.interactive.tlsCertificatePath && config.interactive.tlsKeyPath
        ? { tls: { certificatePath: config.interactive.tlsCertificatePath, keyPath: config.interactive.tlsKeyPath } } : {}),
      minTimeSeconds: config.interactive.minTimeSeconds, expirySeconds: config.interactive.expirySeconds,
      tmpDir: path.join(config.stateDir, 'tmp'),
    },
  };
}

/** The host's first non-loopback IPv4 address, if it has one. */
function hostPrivateIp(): string | undefined {
  for (const addresses of Object.values(os.networkInterfaces())) {
    const found = addresses?.find((a) => a.family === 'IPv4' && !a.internal);
    if (found) return found.address;
  }
  return undefined;
}

/** Removes this workerId's containers but those of the tasks still running (`busyTaskIds`). */
async function sweepLeftoverContainers(engine: Engine, workerId: string, log: WorkerLog, busyTaskIds: readonly string[]): Promise<void> {
  for (const c of await engine.listOwnedContainers(workerId)) {
    if (busyTaskIds.includes(c.labels[LABEL_TASK_ID] ?? '')) continue;
    log.info('removing leftover container', { containerId: c.id, taskId: c.labels[LABEL_TASK_ID] });
    await engine.removeContainer(c.id).catch((err: Error) => log.warn('could not remove leftover container', { containerId: c.id, error: err.message }));
  }
}

/** Removes containers, committed images (dockerSave) and networks this workerId labelled in an earlier life. */
async function sweepLeftovers(engine: Engine, workerId: string, log: WorkerLog): Promise<void> {
  await sweepLeftoverContainers(engine, workerId, log, []);
  for (const image of await engine.listOwnedImages(workerId)) {
    if (image.labels[LABEL_COMMITTED_IMAGE] !== 'true') continue;
    log.info('removing leftover committed image', { image: image.id, taskId: image.labels[LABEL_TASK_ID] });
    await engine.removeImage(image.id, { force: true }).catch((err: Error) => log.warn('could not remove leftover committed image', { image: image.id, error: err.message }));
  }
  for (const n of await engine.listOwnedNetworks(workerId)) {
    log.info('removing leftover network', { network: n.name });
    await engine.removeNetwork(n.id).catch((err: Error) => log.warn('could not remove leftover network', { network: n.name, error: err.message }));
  }
}

/**
 * Removes what an earlier process left in <stateDir>/tmp when it died mid-task: task log files
 * (task-log-*), artifact spools (artifact-*) and interactive hold directories (interactive-*).
 * Only this worker writes there.
 */
export function sweepTmpDir(tmpDir: string, log: WorkerLog): void {
  for (const name of readdirSync(tmpDir)) {
    if (!name.startsWith('task-log-') && !name.startsWith('artifact-') && !name.startsWith('interactive-')) continue;
    try {
      rmSync(path.join(tmpDir, name), { recursive: true, force: true });
      log.info('removed leftover temporary file', { path: path.join(tmpDir, name) });
    } catch (err) {
      log.warn('could not remove leftover temporary file', { path: path.join(tmpDir, name), error: (err as Error).message });
    }
  }
}

export async function startWorker(config: WorkerConfig, deployment: Deployment, log: WorkerLog): Promise<RunningWorker> {
  // A configured key that is missing or malformed stops the worker here (WorkerKeyError names the file).
  const keys = await openWorkerKeys(workerKeyPaths(config));
  const engine = new Engine({
    socketPath: config.docker.socketPath,
    timeouts: { callMs: config.docker.callTimeoutSeconds * 1000, progressMs: config.docker.progressTimeoutSeconds * 1000 },
  });
  // An engine that does not answer yet (starting, restarting) does not stop the worker: the
  // claim gate says why nothing is claimed until it does, and sweeps once it answers.
  let engineSwept = false;
  try {
    await engine.ping();
    await sweepLeftovers(engine, config.workerId, log);
    engineSwept = true;
  } catch (err) {
    log.warn('the Docker engine does not answer at start; the worker claims no task until it does', { socketPath: config.docker.socketPath, error: (err as Error).message });
  }
  const tmpDir = path.join(config.stateDir, 'tmp');
  mkdirSync(tmpDir, { recursive: true });
  // Runs an earlier process held when it died: resolved now (their containers went with the
  // sweep above), with the logs they left, before those are swept away.
  const journal = new RunJournal(path.join(config.stateDir, 'runs'), log);
  const recovered = await recoverRuns({ journal, rootUrl: deployment.rootUrl, log, storageType: config.artifacts.storageType as 'object' | 's3', uploadRetries: config.artifacts.uploadRetries, tmpDir });
  if (recovered.resolved + recovered.expired + recovered.failed > 0) log.info('runs left by an earlier process', { ...recovered });
  sweepTmpDir(tmpDir, log);
  const liveLogs = await LiveLogServer.start({
    host: config.liveLog.host, port: config.liveLog.port, publicUrl: config.liveLog.publicUrl || undefined, log,
    publicHost: reachableHost(config.liveLog.host, config.host),
    graceSeconds: config.liveLog.graceSeconds, maxEndedLogs: config.liveLog.maxEndedLogs,
  });
  // Every run's clients reuse connections to the deployment (a few calls per task).
  shareKeepAliveConnections();
  // The worker's own clients follow its credentials: a replacement (worker-runner's
  // new-credentials) reaches the next call each makes.
  const credentials = new WorkerCredentials(deployment.credentials);
  const workerQueue = credentials.client((c) => queueClient({ rootUrl: deployment.rootUrl, credentials: c }));
  // The claim loop retries itself, and must not on shutdown.
  const claimQueue = credentials.client((c) => queueClient({ rootUrl: deployment.rootUrl, credentials: c }, { keepAliveAgent: true, timeoutMs: 60_000, retries: 0 }));
  const pool = `${config.provisionerId}/${config.workerType}`;
  const images = new ImageStore({ engine, log, stateDir: config.stateDir, rootUrl: deployment.rootUrl, registries: config.registries, pullRetries: config.image.pullRetries, pullBaseDelayMs: config.image.pullBaseDelayMs,
    maxExpandedBytes: async (): Promise<number> => Math.min(config.image.maxExpandedBytes, await budget.roomForImages()) });
  // Built per call (once per run at most) so that it carries the current credentials.
  const expandScopes: ScopeExpander = (scopes) => authScopeExpander({ rootUrl: deployment.rootUrl, credentials: credentials.current() })(scopes);
  // Purge requests are asked for again before a task's caches are chosen (when the last answer is stale).
  const caches = await VolumeCaches.open({ dir: path.join(config.stateDir, 'caches'), workerPool: pool, log, beforeAcquire: () => purger.refresh() });
  const purger = new PurgePoller({ client: credentials.client((c) => purgeCacheClient({ rootUrl: deployment.rootUrl, credentials: c })), workerPoolId: pool, caches, intervalSeconds: config.cache.purgePollSeconds, log });
  const running = new Set<TaskRun>();
  let dockerRoot: Promise<string | undefined> | undefined; // asked once: it does not change
  const budget: DiskBudget = new DiskBudget({
    engine, workerId: config.workerId, caches, images: new ImageStoreRecords(images), log,
    thresholdBytes: config.diskspaceThreshold, imageExpirationSeconds: config.imageExpirationSeconds,
    dockerRootDir: () => (dockerRoot ??= engine.info().then((i) => i.dockerRootDir, () => { dockerRoot = undefined; return undefined; })), activeTaskIds: () => [...running].map((r) => r.taskId),
  });
  const deps: TaskRunDeps = {
    rootUrl: deployment.rootUrl, worker: workerSettings(config, deployment.rootUrl),
    images, caches, expandScopes, features: providedFeatures(config.sidecars),
    engine, liveLogs, log, statusQueue: workerQueue, storageType: config.artifacts.storageType as 'object' | 's3',
    uploadRetries: config.artifacts.uploadRetries, uploadParallelism: config.artifacts.uploadParallelism,
    reclaimMarginSeconds: config.task.reclaimMarginSeconds,
    cancelPollSeconds: config.task.cancelPollSeconds, tmpDir, journal, keys,
    // The worker's own credentials never show in a task log.
    maskedSecrets: deployment.credentials?.accessToken ? [deployment.credentials.accessToken] : [],
  };
  const superseding: SupersedingOptions = {
    rootUrl: deployment.rootUrl, queue: workerQueue, workerGroup: config.workerGroup, workerId: config.workerId, log,
    storageType: deps.storageType, uploadRetries: deps.uploadRetries, reclaimMarginSeconds: deps.reclaimMarginSeconds, tmpDir, journal,
  };
  let idleTimer: NodeJS.Timeout | undefined;
  // 5, 30 and 120 s after the last task: a full garbage collection, then the heap pages glibc
  // kept are handed back.
  const allocator = loadAllocatorTrim();
  if ('unavailable' in allocator) log.info('freed heap memory stays resident after work', { reason: allocator.unavailable });
  const idleTrim = new IdleTrim('unavailable' in allocator ? undefined : allocator, IDLE_TRIM_DELAYS_MS,
    (result) => log.debug('heap memory handed back', result), exposedGarbageCollector());
  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => { resolveStopped = r; });
  let shuttingDown: Promise<void> | undefined;
  let stopReason: string | undefined;
  /** Set once a shutdown that does not let tasks finish began: every run, even one starting now, is interrupted. */
  let interruptingTasks = false;

  const loop = new ClaimLoop({
    queue: claimQueue, taskQueueId: `${config.provisionerId}/${config.workerType}`,
    workerGroup: config.workerGroup, workerId: config.workerId, capacity: config.capacity, log,
    gate: async (free) => {
      try {
        await engine.ping();
      } catch (err) {
        engineSwept = false;
        return `the Docker engine does not answer (${(err as Error).message}); claiming again once it does`;
      }
      if (!engineSwept) {
        // First answer since start, or since it went away: what a restart left is removed (an
        // engine without live-restore stops every container when it stops).
        if (running.size === 0) await sweepLeftovers(engine, config.workerId, log);
        else await sweepLeftoverContainers(engine, config.workerId, log, [...running].map((r) => r.taskId));
        engineSwept = true;
      }
      await purger.maybePoll();
      return budget.gate(free);
    },
    runTask: async (claim: ClaimResponse) => {
      // The claimed task, or the task that supersedes it (payload.supersederUrl), runs here.
      const group = await SupersedingGroup.form(claim, superseding);
      const run = new TaskRun(deps, group.primary, group.companion);
      running.add(run);
      if (interruptingTasks) run.interrupt({ kind: 'shutdown' });
      try { await run.run(); } finally {
        running.delete(run);
        await group.settle('not-covered'); // only if the run did not (it never throws)
      }
    },
    runFailed: async (claim: ClaimResponse) => {
      const c = new TaskClaim(deployment.rootUrl, claim);
      try {
        await c.queue().reportException(c.taskId, c.runId, { reason: 'internal-error' });
        log.info('task resolved', { taskId: c.taskId, runId: c.runId, taskState: 'exception/internal-error' });
      } catch (err) {
        if (statusCodeOf(err) === 409) log.warn('task already resolved by the queue', { taskId: c.taskId, runId: c.runId, error: (err as Error).message });
        else log.error('error resolving task', { taskId: c.taskId, runId: c.runId, error: (err as Error).message });
      }
    },
    refuseTask: async (claim: ClaimResponse) => {
      const c = new TaskClaim(deployment.rootUrl, claim);
      await c.queue().reportException(c.taskId, c.runId, { reason: 'worker-shutdown' })
        .catch((err: Error) => log.error('error resolving task', { taskId: c.taskId, runId: c.runId, error: err.message }));
    },
    onIdle: () => {
      log.info('worker idle', { capacity: config.capacity });
      idleTrim.idle();
      if (config.shutdown.afterIdleSeconds > 0 && !idleTimer) {
        idleTimer = setTimeout(() => { void shutdown('idle'); }, config.shutdown.afterIdleSeconds * 1000);
      }
    },
    onBusy: () => {
      idleTrim.busy();
      if (idleTimer) { clearTimeout(idleTimer); idleTimer = undefined; }
    },
  });

  const shutdown = (reason: string, options: { finishTasks?: boolean } = {}): Promise<void> => {
    if (!options.finishTasks && !interruptingTasks) {
      interruptingTasks = true;
      if (shuttingDown) log.info('worker shutting down without waiting for its tasks', { reason, runningTasks: running.size });
      for (const run of running) run.interrupt({ kind: 'shutdown' });
    }
    shuttingDown ??= (async () => {
      stopReason = reason;
      log.info('worker shutting down', { reason, runningTasks: running.size, finishTasks: Boolean(options.finishTasks) });
      if (idleTimer) clearTimeout(idleTimer);
      idleTrim.busy();
      const stopClaiming = loop.stop();
      await stopClaiming;
      await loop.drained();
      await liveLogs.close();
      log.info('worker stopped', { reason });
      resolveStopped();
    })();
    return shuttingDown;
  };

  loop.start();
  log.info('worker started', { taskQueueId: `${config.provisionerId}/${config.workerType}`, workerGroup: config.workerGroup, workerId: config.workerId, capacity: config.capacity, rootUrl: deployment.rootUrl, ed25519PublicKey: ed25519PublicKeyBase64(keys.ed25519) });
  return {
    deployment, liveLogs, stopped, shutdown, runningTasks: () => running.size,
    get stopReason() { return stopReason; },
    replaceCredentials: (next) => {
      credentials.replace(next);
      log.info('worker credentials replaced', { clientId: next.clientId, temporary: Boolean(next.certificate) });
    },
  };
}
