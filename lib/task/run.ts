// One claimed task run, from claim to resolution: the stages of the spine in order.
// Contract (as Buildkite's job runner): constructing creates nothing; run() blocks until the
// run is resolved and never throws; interrupt() may come at any time; cleanup always runs,
// once, with its own deadline. Every claimed run is reported exactly once (or, when it was
// cancelled, deliberately not at all).
//
// How an interruption changes the result:
//  - cancel (the queue resolved the run): nothing is reported, whatever the task did; no
//    further artifact is uploaded (the log still is).
//  - shutdown: before the container exited on its own, the container is killed and the run
//    is resolved exception/worker-shutdown (the queue reruns it). Once it exited on its own,
//    the run keeps its real result: artifacts and log are uploaded and it is reported as usual.
//  - lost claim (reclaim refused, or failing until little time is left): before the result is
//    decided, the container is killed, no further artifact is uploaded and the run is
//    resolved exception/internal-error while the claim's credentials still work.
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
import { queueClient, type ClaimResponse, type QueueClient } from '../queue/taskcluster.ts';
import { validatePayload } from './validate.ts';
import { planTask, DEFAULT_LOG_NAME, backingLogName, type WorkerSettings } from './plan.ts';
import { prepareImage, ImageUnavailable, type ArtifactHash, type ImageStore } from './prepare-image.ts';
import { runContainer } from './container-run.ts';
import { collectArtifacts } from './collect.ts';
import { uploadBulkLog } from './bulk-log.ts';
import { missingDevices } from './device-check.ts';
import { featureRequested } from './feature-catalog.ts';
import { settleWithin } from './deadline.ts';
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
  /** How long stage 7 may take before the run is resolved without waiting for it (default 60 s). */
  cleanupDeadlineMs?: number;
}

export const CLEANUP_DEADLINE_MS = 60_000;
const CANCEL_MESSAGE = 'Task was canceled by another entity. This can happen using a taskcluster client or by cancelling a task within Treeherder.';
const DEADLINE_MESSAGE = 'Task deadline exceeded: the queue resolved this run exception/deadline-exceeded, so the worker stopped it. Give the task a later deadline.';
const INTERNAL_ERROR: Outcome = { kind: 'exception', reason: 'internal-error' };

/** The task log line that says why a run was interrupted. */
export function interruptLine(reason: Interrupt): string {
  if (reason.kind === 'cancel') return reason.message;
  if (reason.kind === 'shutdown') return 'Task has been aborted prematurely. Reason: worker-shutdown';
  return `Task has been aborted prematurely. Reason: ${reason.message}`;
}

export class TaskRun {
  readonly taskId: string;
  readonly runId: number;
  private readonly deps: TaskRunDeps;
  private readonly claimResponse: ClaimResponse;
  /** Aborted by an interruption that stops the task: pulls are abandoned, the container is killed. */
  private readonly interrupted = new AbortController();
  /** Aborted by a cancel or a lost claim: no further artifact is uploaded. */
  private readonly stopUploads = new AbortController();
  private interruptReason: Interrupt | undefined;
  /** The container exited by itself (or by maxRunTime): its exit status is the task's result. */
  private exitedOnItsOwn = false;
  /** The result is decided: only cleanup, the log upload and the report are left. */
  private finishing = false;
  private taskLog: TaskLog | undefined;
  private containerId: string | undefined;
  private cacheLease: CacheLease | undefined;
  private imageRelease: (() => void) | undefined;
  /** sha256 of the image artifact's bytes (task-image / indexed-image), for chain of trust. */
  imageArtifactHash: ArtifactHash | undefined;
  private purgeCaches = false;
  private bulkLog = false;
  private footerWritten = false;
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
    // A shutdown after the container exited by itself changes nothing: the worker finishes the
    // run (uploads, report) before it stops. A claim lost once the result is decided neither.
    if (reason.kind === 'shutdown' && (this.exitedOnItsOwn || this.finishing)) return;
    if (reason.kind === 'lost' && this.finishing) return;
    this.interruptReason = reason;
    // Before the task log exists the line is written as soon as it does (run()).
    this.taskLog?.error(interruptLine(reason));
    this.interrupted.abort();
    if (reason.kind !== 'shutdown') this.stopUploads.abort();
  }

  async run(): Promise<void> {
    const { deps } = this;
    const ids = { taskId: this.taskId, runId: this.runId };
    let claim: TaskClaim | undefined;
    let reclaimer: Reclaimer | undefined;
    let taskLog: TaskLog | undefined;
    let outcome: Outcome = INTERNAL_ERROR;
    let reported = false;
    // Stage 7 runs alongside the log upload; the report waits for both, so that a task claimed
    // once this one is resolved finds this run's cache instances already released.
    let cleanedUp: Promise<void> | undefined;
    try {
      claim = new TaskClaim(deps.rootUrl, this.claimResponse);
      const task = this.claimResponse.task as unknown as TaskDefinition;
      const startedAt = new Date();
      const expires = task.expires ?? new Date(Date.now() + 365 * 24 * 3600 * 1000).toISOString();
      const current = claim;
      reclaimer = new Reclaimer({
        claim, log: deps.log, marginSeconds: deps.reclaimMarginSeconds, cancelPollSeconds: deps.cancelPollSeconds,
        statusQueue: deps.statusQueue,
        onCancelled: (_why, reasonResolved) =>
          this.interrupt({ kind: 'cancel', message: reasonResolved === 'deadline-exceeded' ? DEADLINE_MESSAGE : CANCEL_MESSAGE }),
        onLost: (err) => this.interrupt({ kind: 'lost', message: err.message }),
      });
      reclaimer.start();
      const publisher = new ArtifactPublisher({
        rootUrl: deps.rootUrl, taskId: this.taskId, runId: this.runId, credentials: () => current.credentials,
        storageType: deps.storageType, retry: { retries: deps.uploadRetries }, tmpDir: deps.tmpDir,
      });
      const payload = task.payload as { log?: unknown; features?: unknown; cache?: Record<string, string> } | undefined;
      const live = typeof payload?.log === 'string' && payload.log ? payload.log : DEFAULT_LOG_NAME;
      const logNames = { live, backing: backingLogName(live) };
      // The live log's reference artifact is created while the task is prepared; the backing
      // log replaces it only after it exists.
      let liveLogPublished: Promise<void> = Promise.resolve();
      try {
        taskLog = await TaskLog.create({ dir: deps.tmpDir, log: deps.log });
        // features.localLiveLog false: no live log while the task runs; the complete log is
        // still uploaded at the end (live.log then links to it, as always).
        if (featureRequested(payload?.features, 'localLiveLog')) {
          const liveUrl = deps.liveLogs.publish(taskLog);
          liveLogPublished = publishLiveLog(publisher, liveUrl, expires, logNames).then(
            () => this.mark('liveLogPublished'),
            (err: Error) => { deps.log.warn('could not publish the live log artifact', { ...ids, error: err.message }); });
        }
        taskLog.header({
          taskId: this.taskId, workerId: deps.worker.workerId, workerGroup: deps.worker.workerGroup,
          workerNodeType: deps.worker.instanceType, workerType: deps.worker.workerType,
          workerPool: `${deps.worker.provisionerId}/${deps.worker.workerType}`,
          workerVersion: deps.worker.workerVersion, publicIp: deps.worker.publicIp, hostname: deps.worker.hostname,
          caches: payload?.cache && typeof payload.cache === 'object' ? payload.cache : undefined,
        });
        this.taskLog = taskLog;
        if (this.interruptReason) taskLog.error(interruptLine(this.interruptReason));
        outcome = await this.stages(claim, task, taskLog, publisher, startedAt, expires);
      } catch (err) {
        deps.log.error('task run failed', { ...ids, error: (err as Error).stack });
        taskLog?.error(`Worker error: ${(err as Error).message}`);
        if (!this.footerWritten) taskLog?.footer(false, -1, startedAt);
        outcome = INTERNAL_ERROR;
      } finally {
        this.finishing = true;
        cleanedUp = this.boundedCleanup().then(() => this.mark('cleanedUp'));
      }
      outcome = this.applyInterrupt(outcome);
      // A cancelled run's log is uploaded too: the queue accepts artifacts of a run resolved
      // exception for a while, and the owner wants to see where the task was when it stopped.
      // The bulk log is uploaded after the backing log, from the complete file.
      if (taskLog) {
        try {
          await liveLogPublished;
          await publishBackingLog(publisher, taskLog, expires, logNames);
        } catch (err) {
          deps.log.error('could not upload the task log', { ...ids, error: (err as Error).message });
          if (outcome.kind !== 'exception' && outcome.kind !== 'cancelled') outcome = INTERNAL_ERROR;
        }
        if (this.bulkLog && outcome.kind !== 'cancelled') {
          await taskLog.close();
          try {
            await uploadBulkLog(publisher, taskLog, expires);
          } catch (err) {
            deps.log.error('could not upload the bulk log', { ...ids, error: (err as Error).message });
            if (outcome.kind !== 'exception') outcome = INTERNAL_ERROR;
          }
        }
      }
      this.mark('logUploaded');
      await cleanedUp;
      reclaimer.stop();
      outcome = this.applyInterrupt(outcome);
      reported = true;
      await reportOutcome(claim, outcome, deps.log);
      this.mark('resolved');
    } catch (err) {
      // Nothing above should throw; if something does, the run is still resolved.
      deps.log.error('task run failed', { ...ids, error: (err as Error).stack });
      await cleanedUp;
      if (!reported) {
        reported = true;
        outcome = this.interruptReason?.kind === 'cancel' ? { kind: 'cancelled' } : INTERNAL_ERROR;
        await reportOutcome(claim ?? this.fallbackClaim(), outcome, deps.log).catch((e: Error) =>
          deps.log.error('error resolving task', { ...ids, error: e.message }));
      }
    } finally {
      reclaimer?.stop();
      await taskLog?.close().catch(() => undefined);
      await taskLog?.release().catch(() => undefined);
      deps.log.info('task timings', { ...ids, outcome: describeOutcome(outcome), ms: this.timings });
    }
  }

  /** A claim object for reporting when the TaskClaim itself could not be built. */
  private fallbackClaim(): TaskClaim {
    const client = queueClient({ rootUrl: this.deps.rootUrl, credentials: this.claimResponse.credentials });
    return { taskId: this.taskId, runId: this.runId, queue: () => client } as unknown as TaskClaim;
  }

  /** An interruption decides the outcome: cancelled runs are not reported, shutdown reruns. */
  private applyInterrupt(outcome: Outcome): Outcome {
    const r = this.interruptReason;
    if (!r) return outcome;
    if (r.kind === 'cancel') return { kind: 'cancelled' };
    // The container exited by itself: its result stands (a claim lost while artifacts were
    // being collected has already made stages() return internal-error).
    if (this.exitedOnItsOwn) return outcome;
    if (r.kind === 'shutdown') return { kind: 'exception', reason: 'worker-shutdown' };
    return INTERNAL_ERROR;
  }

  private async stages(claim: TaskClaim, task: TaskDefinition, taskLog: TaskLog, publisher: ArtifactPublisher, startedAt: Date, expires: string): Promise<Outcome> {
    const { deps } = this;
    const finish = (outcome: Outcome, exitCode = -1): Outcome => {
      taskLog.footer(outcome.kind === 'completed', exitCode, startedAt);
      this.footerWritten = true;
      return outcome;
    };
    const abortRun = (message: string | undefined, outcome: Outcome): Outcome => {
      if (message) taskLog.error(message);
      return finish(outcome);
    };
    // Stopped by an interruption: applyInterrupt() decides what is reported.
    const interrupted = (exitCode = -1) => finish(INTERNAL_ERROR, exitCode);

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
    const unsupported: string[] = [];
    if (plan.encryptedEnv.length) unsupported.push('encryptedEnv not supported: payload.encryptedEnv (encrypted environment variables) is not supported by this worker build yet; pass the values another way (e.g. the secrets service) or run the task on a worker that decrypts them.');
    if (plan.supersederUrl) unsupported.push('supersederUrl not supported: payload.supersederUrl (superseding) is not supported by this worker build; remove it.');
    if (unsupported.length) return abortRun(unsupported.join('\n'), { kind: 'exception', reason: 'malformed-payload' });
    this.bulkLog = plan.features.some((f) => f.name === 'bulkLog');
    if (this.interrupted.signal.aborted) return interrupted();

    // 3 prepare: devices present, image ready, caches attached
    const absent = await missingDevices(plan.devices, plan.workerPool);
    if (absent.length) return abortRun(absent.join('\n'), { kind: 'exception', reason: 'malformed-payload' });
    let imageId: string;
    try {
      const prepared = await prepareImage(deps.images, plan.image, {
        taskId: this.taskId, scopes, expandScopes: deps.expandScopes, credentials: () => claim.credentials,
      }, taskLog, this.interrupted.signal);
      this.imageRelease = prepared.release;
      imageId = prepared.imageId;
      this.imageArtifactHash = prepared.artifactHash;
      this.mark('imageReady');
    } catch (err) {
      if (this.interrupted.signal.aborted) return interrupted();
      if (err instanceof ImageUnavailable) {
        return abortRun(`Pulling docker image has failed.\nError: ${err.message}`, { kind: 'failed' });
      }
      throw err;
    }
    if (this.interrupted.signal.aborted) return interrupted();
    try {
      this.cacheLease = await deps.caches.acquire(this.taskId, plan.caches, scopes);
    } catch (err) {
      if (err instanceof CacheScopeError || err instanceof CacheNameError) return abortRun(err.message, { kind: 'exception', reason: 'malformed-payload' });
      throw err;
    }
    for (const c of this.cacheLease.attached) {
      taskLog.info(`${c.reused ? 'Using existing' : 'Creating new'} cache instance for "${c.name}" at ${c.mountPoint}`);
    }
    if (this.interrupted.signal.aborted) return interrupted();

    // 4 run
    const hostConfig = { ...plan.create.HostConfig, Binds: [...(plan.create.HostConfig?.Binds ?? []), ...this.cacheLease.binds] };
    try {
      this.containerId = await deps.engine.createContainer({ ...plan.create, HostConfig: hostConfig, Image: imageId },
        { workerId: deps.worker.workerId, taskId: this.taskId, runId: this.runId });
    } catch (err) {
      return abortRun(`Failure to properly start execution environment.\n${(err as Error).message}`, { kind: 'failed' });
    }
    this.mark('containerCreated');
    if (this.interrupted.signal.aborted) return interrupted();
    taskLog.info(TASK_STARTING);
    const result = await runContainer(deps.engine, this.containerId, taskLog, {
      maxRunTimeSeconds: plan.maxRunTimeSeconds, signal: this.interrupted.signal,
      // From the exit on, a shutdown no longer changes the result (see interrupt()).
      onExited: (interrupted) => { this.exitedOnItsOwn = !interrupted; },
    });
    this.exitedOnItsOwn = !result.interrupted;
    if (result.startError) {
      taskLog.error('Failure to properly start execution environment.');
      taskLog.error(result.startError);
    }
    this.mark('containerExited');
    taskLog.info(TASK_FINISHED);
    this.purgeCaches = plan.onExitStatus.purgeCaches.includes(result.exitCode);
    // Killed by an interruption, or cancelled / claim lost while the output drained: nothing
    // more is uploaded than the log.
    if (result.interrupted || this.stopUploads.signal.aborted) return interrupted(result.exitCode);

    // 5 collect
    const collected = await collectArtifacts(deps.engine, this.containerId, plan.artifacts, publisher, taskLog, this.stopUploads.signal);
    this.mark('artifactsCollected');
    if (collected.stopped) return interrupted(result.exitCode);
    // An upload that failed for good is the worker's problem, not the task's: the footer and
    // the resolution say so together.
    if (collected.uploadFailure) return finish(INTERNAL_ERROR, result.exitCode);

    // 6 resolve (decided here, reported by run())
    if (result.exitCode === 0 && !result.timedOut && !result.startError) return finish({ kind: 'completed' }, 0);
    if (!result.timedOut && !result.startError && plan.onExitStatus.retry.includes(result.exitCode)) {
      return finish({ kind: 'exception', reason: 'intermittent-task' }, result.exitCode);
    }
    return finish({ kind: 'failed' }, result.exitCode);
  }

  /** Stage 7 within its own deadline: a hung engine call must not keep the run unresolved. */
  private async boundedCleanup(): Promise<void> {
    const ms = this.deps.cleanupDeadlineMs ?? CLEANUP_DEADLINE_MS;
    const containerId = this.containerId;
    if (!await settleWithin(this.cleanup(), ms)) {
      this.deps.log.error('cleanup exceeded its deadline; resolving the task without waiting for it', {
        taskId: this.taskId, runId: this.runId, containerId, deadlineSeconds: ms / 1000,
      });
    }
  }

  /**
   * Stage 7: remove the container (with its anonymous volumes) whatever happened, then give
   * back the cache instances (only once the container is gone; abandoned when it could not be
   * removed) and the image lease. Never throws.
   */
  private async cleanup(): Promise<void> {
    const ids = { taskId: this.taskId, runId: this.runId };
    const id = this.containerId;
    this.containerId = undefined;
    let containerGone = true;
    if (id) {
      try {
        await this.deps.engine.removeContainer(id);
      } catch (err) {
        containerGone = false;
        this.deps.log.error('could not remove task container', { ...ids, containerId: id, error: (err as Error).message });
      }
    }
    const lease = this.cacheLease;
    this.cacheLease = undefined;
    // A container that could not be removed may still write to its cache instances: they are
    // given up for good rather than handed to the next task.
    await (containerGone ? lease?.release(this.purgeCaches) : lease?.abandon())?.catch((err: Error) =>
      this.deps.log.error('could not release cache instances', { ...ids, error: err.message }));
    try { this.imageRelease?.(); } catch (err) {
      this.deps.log.error('could not release the image lease', { ...ids, error: (err as Error).message });
    }
    this.imageRelease = undefined;
  }
}

export const hostname = os.hostname();
