// One claimed task run, from claim to resolution: the stages of the spine in order.
// Contract (as Buildkite's job runner): constructing creates nothing; run() blocks until the
// run is resolved and never throws; interrupt() may come at any time; cleanup always runs,
// once, with its own deadline. Every claimed run is reported exactly once (or, when it was
// cancelled, deliberately not at all).
import os from 'node:os';
import type { Engine } from '../docker/engine.ts';
import type { LiveLogServer } from '../log/live-log-server.ts';
import { TaskLog } from '../log/task-log.ts';
import { publishLiveLog, publishBackingLog } from '../log/backing-log.ts';
import { TASK_STARTING, TASK_FINISHED } from '../log/format.ts';
import type { WorkerLog } from '../log/worker-log.ts';
import { ArtifactPublisher, type StorageType } from '../artifacts/upload.ts';
import { TaskClaim } from '../queue/task-claim.ts';
import { Reclaimer } from '../queue/reclaimer.ts';
import type { ClaimResponse, QueueClient } from '../queue/taskcluster.ts';
import { validatePayload } from './validate.ts';
import { planTask, DEFAULT_LOG_NAME, backingLogName, type WorkerSettings } from './plan.ts';
import { prepareImage, ImageUnavailable, type ImageStore } from './prepare-image.ts';
import { runContainer } from './container-run.ts';
import { collectArtifacts } from './collect.ts';
import { uploadBulkLog } from './bulk-log.ts';
import { reportOutcome, describeOutcome, type Interrupt, type Outcome } from './outcome.ts';
import type { ContainerPlan, TaskDefinition } from './types.ts';
import { CacheNameError, CacheScopeError, type CacheLease, type VolumeCaches } from '../cache/volume-cache.ts';

export interface TaskRunDeps {
  rootUrl: string;
  worker: WorkerSettings;
  images: ImageStore;
  caches: VolumeCaches;
  /** Expands roles in scopes (the auth service); used only when raw task scopes fall short. */
  expandScopes(scopes: string[]): Promise<string[]>;
  engine: Engine;
  liveLogs: LiveLogServer;
  log: WorkerLog;
  /** The worker's own client, for status checks (cancellation). */
  statusQueue?: QueueClient;
  storageType: StorageType;
  uploadRetries: number;
  reclaimMarginSeconds: number;
  cancelPollSeconds: number;
  tmpDir: string;
}

const CANCEL_MESSAGE = 'Task was canceled by another entity. This can happen using a taskcluster client or by cancelling a task within Treeherder.';
const DEADLINE_MESSAGE = 'Task deadline exceeded: the queue resolved this run exception/deadline-exceeded, so the worker stopped it. Give the task a later deadline.';

export class TaskRun {
  readonly taskId: string;
  readonly runId: number;
  private readonly deps: TaskRunDeps;
  private readonly claimResponse: ClaimResponse;
  private readonly interrupted = new AbortController();
  private interruptReason: Interrupt | undefined;
  private taskLog: TaskLog | undefined;
  private containerId: string | undefined;
  private cacheLease: CacheLease | undefined;
  private imageRelease: (() => void) | undefined;
  private purgeCaches = false;
  /** Milliseconds since the claim at which each stage ended: the worker's own breakdown. */
  private readonly timings: Record<string, number> = {};
  private readonly claimedAt = Date.now();
  private mark(stage: string): void { this.timings[stage] = Date.now() - this.claimedAt; }

  constructor(deps: TaskRunDeps, claim: ClaimResponse) {
    this.deps = deps;
    this.claimResponse = claim;
    this.taskId = claim.status.taskId;
    this.runId = claim.runId;
  }

  /** Stops the run early: cancel (the queue resolved it), shutdown or a lost claim. */
  interrupt(reason: Interrupt): void {
    if (this.interruptReason) return;
    this.interruptReason = reason;
    if (reason.kind === 'cancel') this.taskLog?.error(reason.message);
    else if (reason.kind === 'shutdown') this.taskLog?.error('Task has been aborted prematurely. Reason: worker-shutdown');
    else this.taskLog?.error(`Task has been aborted prematurely. Reason: ${reason.message}`);
    this.interrupted.abort();
  }

  async run(): Promise<void> {
    const { deps } = this;
    const ids = { taskId: this.taskId, runId: this.runId };
    const claim = new TaskClaim(deps.rootUrl, this.claimResponse);
    const task = this.claimResponse.task as unknown as TaskDefinition;
    const startedAt = new Date();
    const expires = task.expires ?? new Date(Date.now() + 365 * 24 * 3600 * 1000).toISOString();
    let outcome: Outcome = { kind: 'exception', reason: 'internal-error' };
    const reclaimer = new Reclaimer({
      claim, log: deps.log, marginSeconds: deps.reclaimMarginSeconds, cancelPollSeconds: deps.cancelPollSeconds,
      statusQueue: deps.statusQueue,
      onCancelled: (_why, reasonResolved) =>
        this.interrupt({ kind: 'cancel', message: reasonResolved === 'deadline-exceeded' ? DEADLINE_MESSAGE : CANCEL_MESSAGE }),
      onLost: (err) => this.interrupt({ kind: 'lost', message: err.message }),
    });
    reclaimer.start();
    const publisher = new ArtifactPublisher({
      rootUrl: deps.rootUrl, taskId: this.taskId, runId: this.runId, credentials: () => claim.credentials,
      storageType: deps.storageType, retry: { retries: deps.uploadRetries }, tmpDir: deps.tmpDir,
    });
    const payloadLog = (task.payload as { log?: unknown })?.log;
    const logNames = { live: typeof payloadLog === 'string' && payloadLog ? payloadLog : DEFAULT_LOG_NAME, backing: '' };
    logNames.backing = backingLogName(logNames.live);
    let taskLog: TaskLog | undefined;
    try {
      taskLog = this.taskLog = await TaskLog.create({ dir: deps.tmpDir, log: deps.log });
      const liveUrl = deps.liveLogs.publish(taskLog);
      await publishLiveLog(publisher, liveUrl, expires, logNames).catch((err: Error) =>
        deps.log.warn('could not publish the live log artifact', { ...ids, error: err.message }));
      this.mark('liveLogPublished');
      taskLog.header({
        taskId: this.taskId, workerId: deps.worker.workerId, workerGroup: deps.worker.workerGroup,
        workerNodeType: deps.worker.instanceType, workerPool: `${deps.worker.provisionerId}/${deps.worker.workerType}`,
        workerVersion: deps.worker.workerVersion, publicIp: deps.worker.publicIp, hostname: deps.worker.hostname,
        caches: (task.payload as { cache?: Record<string, string> })?.cache,
      });
      outcome = await this.stages(claim, task, taskLog, publisher, startedAt, expires);
    } catch (err) {
      deps.log.error('task run failed', { ...ids, error: (err as Error).stack });
      taskLog?.error(`Worker error: ${(err as Error).message}`);
      outcome = { kind: 'exception', reason: 'internal-error' };
    } finally {
      await this.cleanup();
      this.mark('cleanedUp');
    }
    outcome = this.applyInterrupt(outcome);
    // A cancelled run's log is uploaded too: the queue accepts artifacts of a run resolved
    // exception for a while, and the owner wants to see where the task was when it stopped.
    if (taskLog) {
      try {
        await publishBackingLog(publisher, taskLog, expires, logNames);
      } catch (err) {
        deps.log.error('could not upload the task log', { ...ids, error: (err as Error).message });
        if (outcome.kind !== 'exception' && outcome.kind !== 'cancelled') outcome = { kind: 'exception', reason: 'internal-error' };
      }
    }
    this.mark('logUploaded');
    reclaimer.stop();
    await reportOutcome(claim, this.applyInterrupt(outcome), deps.log);
    this.mark('resolved');
    await taskLog?.close();
    await taskLog?.release();
    deps.log.info('task timings', { ...ids, outcome: describeOutcome(outcome), ms: this.timings });
  }

  /** An interruption decides the outcome: cancelled runs are not reported, shutdown reruns. */
  private applyInterrupt(outcome: Outcome): Outcome {
    const r = this.interruptReason;
    if (!r) return outcome;
    if (r.kind === 'cancel') return { kind: 'cancelled' };
    if (r.kind === 'shutdown') return { kind: 'exception', reason: 'worker-shutdown' };
    return { kind: 'exception', reason: 'internal-error' };
  }

  private async stages(claim: TaskClaim, task: TaskDefinition, taskLog: TaskLog, publisher: ArtifactPublisher, startedAt: Date, expires: string): Promise<Outcome> {
    const { deps } = this;
    const abortRun = (message: string | undefined, outcome: Outcome): Outcome => {
      if (message) taskLog.error(message);
      taskLog.footer(false, -1, startedAt);
      return outcome;
    };

    // 1 validate
    const validation = validatePayload(task.payload, task);
    for (const w of validation.warnings) taskLog.warn(w);
    if (!validation.ok) {
      return abortRun('`task.payload` is not valid:\n' + validation.errors.map((e) => ` - ${e}`).join('\n'), { kind: 'exception', reason: 'malformed-payload' });
    }
    // 2 plan (with the task's raw scopes; roles are expanded only when those fall short)
    const planWith = (scopes: readonly string[]) => planTask({
      taskId: this.taskId, runId: this.runId, task, payload: validation.payload,
      claim: { takenUntil: claim.takenUntil.toISOString() }, worker: deps.worker, scopes,
    });
    let scopes: string[] = task.scopes ?? [];
    let plan: ContainerPlan = planWith(scopes);
    if (plan.refusals.length && scopes.length) {
      scopes = await deps.expandScopes(scopes);
      plan = planWith(scopes);
    }
    if (plan.refusals.length) {
      return abortRun(plan.refusals.map((r) => r.message).join('\n'), { kind: 'exception', reason: 'malformed-payload' });
    }
    if (plan.encryptedEnv.length) {
      return abortRun('payload.encryptedEnv is not supported by this worker build yet.', { kind: 'exception', reason: 'malformed-payload' });
    }
    if (this.interrupted.signal.aborted) return abortRun(undefined, { kind: 'exception', reason: 'internal-error' });

    // 3 prepare
    let imageId: string;
    try {
      const prepared = await prepareImage(deps.images, plan.image, { taskId: this.taskId, scopes, credentials: () => claim.credentials }, taskLog, this.interrupted.signal);
      this.imageRelease = prepared.release;
      imageId = prepared.imageId;
      this.mark('imageReady');
    } catch (err) {
      if (this.interrupted.signal.aborted) return abortRun(undefined, { kind: 'exception', reason: 'internal-error' });
      if (err instanceof ImageUnavailable) {
        return abortRun(`Pulling docker image has failed.\nError: ${err.message}`, { kind: 'failed' });
      }
      throw err;
    }
    if (this.interrupted.signal.aborted) return abortRun(undefined, { kind: 'exception', reason: 'internal-error' });
    try {
      this.cacheLease = await deps.caches.acquire(this.taskId, plan.caches, scopes);
    } catch (err) {
      if (err instanceof CacheScopeError || err instanceof CacheNameError) return abortRun(err.message, { kind: 'exception', reason: 'malformed-payload' });
      throw err;
    }
    for (const c of this.cacheLease.attached) {
      taskLog.info(`${c.reused ? 'Using existing' : 'Creating new'} cache instance for "${c.name}" at ${c.mountPoint}`);
    }

    // 4 run
    const hostConfig = { ...plan.create.HostConfig, Binds: [...(plan.create.HostConfig?.Binds ?? []), ...this.cacheLease.binds] };
    try {
      this.containerId = await deps.engine.createContainer({ ...plan.create, HostConfig: hostConfig, Image: imageId },
        { workerId: deps.worker.workerId, taskId: this.taskId, runId: this.runId });
    } catch (err) {
      return abortRun(`Failure to properly start execution environment.\n${(err as Error).message}`, { kind: 'failed' });
    }
    this.mark('containerCreated');
    taskLog.info(TASK_STARTING);
    const result = await runContainer(deps.engine, this.containerId, taskLog, {
      maxRunTimeSeconds: plan.maxRunTimeSeconds, signal: this.interrupted.signal,
    });
    if (result.startError) {
      taskLog.error('Failure to properly start execution environment.');
      taskLog.error(result.startError);
    }
    this.mark('containerExited');
    taskLog.info(TASK_FINISHED);
    this.purgeCaches = plan.onExitStatus.purgeCaches.includes(result.exitCode);
    if (result.oomKilled) {
      taskLog.error('The task ran out of memory: the kernel\'s OOM killer stopped a process in the container. Use less memory, or ask for a worker type with more.');
    }
    if (this.interruptReason?.kind === 'cancel') return abortRun(undefined, { kind: 'cancelled' });

    // 5 collect
    const collected = await collectArtifacts(deps.engine, this.containerId, plan.artifacts, publisher, taskLog);
    if (plan.features.some((f) => f.name === 'bulkLog')) {
      await uploadBulkLog(publisher, taskLog, expires).catch((err: Error) => taskLog.warn(`Could not upload the bulk log: ${err.message}`));
    }
    this.mark('artifactsCollected');
    const success = result.exitCode === 0 && !result.timedOut && !result.startError && !this.interruptReason;
    taskLog.footer(success, result.exitCode, startedAt);
    if (collected.uploadFailure) return { kind: 'exception', reason: 'internal-error' };

    // 6 resolve (decided here, reported by run())
    if (success) return { kind: 'completed' };
    if (!result.timedOut && !result.startError && plan.onExitStatus.retry.includes(result.exitCode)) {
      return { kind: 'exception', reason: 'intermittent-task' };
    }
    return { kind: 'failed' };
  }

  /**
   * Stage 7: remove the container (with its anonymous volumes) whatever happened, then give
   * back the cache instances (only once the container is gone) and the image lease.
   */
  private async cleanup(): Promise<void> {
    const id = this.containerId;
    this.containerId = undefined;
    if (id) {
      try {
        await this.deps.engine.removeContainer(id);
      } catch (err) {
        this.deps.log.error('could not remove task container', { taskId: this.taskId, runId: this.runId, containerId: id, error: (err as Error).message });
      }
    }
    const lease = this.cacheLease;
    this.cacheLease = undefined;
    await lease?.release(this.purgeCaches).catch((err: Error) =>
      this.deps.log.error('could not release cache instances', { taskId: this.taskId, runId: this.runId, error: err.message }));
    this.imageRelease?.();
    this.imageRelease = undefined;
  }
}

export const hostname = os.hostname();
