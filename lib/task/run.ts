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
import type { Feature } from '../features/feature.ts';
import { withAdditions, maskedSecrets } from '../features/plan-features.ts';
import { FEATURES } from '../features/registry.ts';
import { TaskFeatures } from '../features/task-features.ts';
import { TaskScopes, type ScopeExpander } from '../scopes/task-scopes.ts';
import { validatePayload } from './validate.ts';
import { planTask, liveLogName, backingLogName, taskExpiry, type WorkerSettings } from './plan.ts';
import { prepareImage, ImageUnavailable, type ArtifactHash, type ImageStore } from './prepare-image.ts';
import { runContainer, type ContainerRunResult } from './container-run.ts';
import { collectArtifacts } from './collect.ts';
import { missingDevices } from './device-check.ts';
import { settleWithin } from './deadline.ts';
import { reportOutcome, describeOutcome, type Interrupt, type Outcome } from './outcome.ts';
import { containerEnv } from './reserved-env.ts';
import type { ContainerPlan, Payload, TaskDefinition } from './types.ts';
import { CacheNameError, CacheScopeError, type CacheLease, type VolumeCaches } from '../cache/volume-cache.ts';

export interface TaskRunDeps {
  rootUrl: string;
  worker: WorkerSettings;
  images: ImageStore;
  caches: VolumeCaches;
  /** Expands roles in scopes (the auth service); asked at most once per run, only when raw task scopes fall short. */
  expandScopes: ScopeExpander;
  /** The features this build provides, in hook order; default: lib/features/registry.ts. */
  features?: readonly Feature[];
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

/**
 * Where a run is. Only forward: preparing -> running -> exited -> finishing (a run may skip
 * straight to finishing). What an interruption does depends on it (see the top of this file).
 */
export type Phase =
  /** Validate, plan, features' beforeCreate, devices, image, caches, container created. */
  | { name: 'preparing' }
  /** The container was started and has not exited. */
  | { name: 'running' }
  /** The container stopped: on its own (or by maxRunTime), or killed by an interruption. */
  | { name: 'exited'; onItsOwn: boolean }
  /** The result is decided: only cleanup, the log upload and the report are left. */
  | { name: 'finishing'; exitedOnItsOwn: boolean };

/** What the run holds until stage 7 gives it back. */
interface Held {
  containerId?: string;
  cacheLease?: CacheLease;
  imageRelease?: () => void;
  features?: TaskFeatures;
  /** The exit status is one of payload.onExitStatus.purgeCaches. */
  purgeCaches: boolean;
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
  private phase: Phase = { name: 'preparing' };
  private taskLog: TaskLog | undefined;
  private readonly held: Held = { purgeCaches: false };
  /** sha256 of the image artifact's bytes (task-image / indexed-image), for chain of trust. */
  imageArtifactHash: ArtifactHash | undefined;
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

  private exitedOnItsOwn(): boolean {
    return (this.phase.name === 'exited' && this.phase.onItsOwn) || (this.phase.name === 'finishing' && this.phase.exitedOnItsOwn);
  }

  /** Stops the run early: cancel (the queue resolved it), shutdown or a lost claim. */
  interrupt(reason: Interrupt): void {
    if (this.interruptReason) return;
    // A shutdown after the container exited by itself changes nothing: the worker finishes the
    // run (uploads, report) before it stops. A claim lost once the result is decided neither.
    if (reason.kind === 'shutdown' && (this.exitedOnItsOwn() || this.phase.name === 'finishing')) return;
    if (reason.kind === 'lost' && this.phase.name === 'finishing') return;
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
      const current = claim;
      reclaimer = new Reclaimer({
        claim, log: deps.log, marginSeconds: deps.reclaimMarginSeconds, cancelPollSeconds: deps.cancelPollSeconds,
        statusQueue: deps.statusQueue,
        onCancelled: (_why, reasonResolved) =>
          this.interrupt({ kind: 'cancel', message: reasonResolved === 'deadline-exceeded' ? DEADLINE_MESSAGE : CANCEL_MESSAGE }),
        onLost: (err) => this.interrupt({ kind: 'lost', message: err.message }),
        onReclaimed: () => {
          this.held.features?.credentialsChanged(current.credentials).catch((err: Error) => {
            deps.log.error('a feature could not take the new credentials', { ...ids, error: err.message });
            this.taskLog?.error(`Worker error: ${err.message}`);
            this.interrupt({ kind: 'lost', message: err.message });
          });
        },
      });
      reclaimer.start();
      const publisher = new ArtifactPublisher({
        rootUrl: deps.rootUrl, taskId: this.taskId, runId: this.runId, credentials: () => current.credentials,
        storageType: deps.storageType, retry: { retries: deps.uploadRetries }, tmpDir: deps.tmpDir,
      });
      const payload = task.payload as { log?: unknown; cache?: Record<string, string> } | undefined;
      // The plan decides these for a valid payload; a payload that does not validate has no
      // plan, and its log is still uploaded under the same names.
      let logNames = { live: liveLogName(payload ?? {}, deps.worker), backing: '' };
      logNames.backing = backingLogName(logNames.live);
      let expires = taskExpiry(task);
      /** Work the task log upload waits for (the live log's reference). */
      const beforeLogUpload: Promise<unknown>[] = [];
      try {
        taskLog = await TaskLog.create({ dir: deps.tmpDir, log: deps.log });
        taskLog.header({
          taskId: this.taskId, workerId: deps.worker.workerId, workerGroup: deps.worker.workerGroup,
          workerNodeType: deps.worker.instanceType, workerType: deps.worker.workerType,
          workerPool: `${deps.worker.provisionerId}/${deps.worker.workerType}`,
          workerVersion: deps.worker.workerVersion, publicIp: deps.worker.publicIp, hostname: deps.worker.hostname,
          caches: payload?.cache && typeof payload.cache === 'object' ? payload.cache : undefined,
        });
        this.taskLog = taskLog;
        if (this.interruptReason) taskLog.error(interruptLine(this.interruptReason));
        const log = taskLog;
        outcome = await this.stages(claim, task, taskLog, startedAt, (plan) => {
          logNames = { live: plan.logName, backing: plan.backingLogName };
          expires = plan.taskExpires;
          return new TaskFeatures(deps.features ?? FEATURES, {
            taskId: this.taskId, runId: this.runId, plan, worker: deps.worker, taskLog: log, publisher,
            liveLogs: deps.liveLogs, engine: deps.engine, log: deps.log, scopes: this.scopes(task),
            credentials: () => current.credentials, signal: this.interrupted.signal,
            beforeLogUpload: (work) => { beforeLogUpload.push(work); },
            mark: (stage) => this.mark(stage),
          });
        }, publisher);
      } catch (err) {
        deps.log.error('task run failed', { ...ids, error: (err as Error).stack });
        taskLog?.error(`Worker error: ${(err as Error).message}`);
        if (this.phase.name !== 'finishing') taskLog?.footer(false, -1, startedAt);
        outcome = INTERNAL_ERROR;
      } finally {
        this.phase = { name: 'finishing', exitedOnItsOwn: this.exitedOnItsOwn() };
        cleanedUp = this.boundedCleanup().then(() => this.mark('cleanedUp'));
      }
      outcome = this.applyInterrupt(outcome);
      // A cancelled run's log is uploaded too: the queue accepts artifacts of a run resolved
      // exception for a while, and the owner wants to see where the task was when it stopped.
      if (taskLog) {
        try {
          await Promise.allSettled(beforeLogUpload);
          await publishBackingLog(publisher, taskLog, expires, logNames);
        } catch (err) {
          deps.log.error('could not upload the task log', { ...ids, error: (err as Error).message });
          if (outcome.kind !== 'exception' && outcome.kind !== 'cancelled') outcome = INTERNAL_ERROR;
        }
        try {
          await this.held.features?.logComplete({ path: taskLog.path, cancelled: outcome.kind === 'cancelled' });
        } catch (err) {
          deps.log.error('a feature failed once the log was complete', { ...ids, error: (err as Error).message });
          if (outcome.kind !== 'exception' && outcome.kind !== 'cancelled') outcome = INTERNAL_ERROR;
        }
      }
      this.mark('logUploaded');
      await cleanedUp;
      await this.featuresCleanup();
      reclaimer.stop();
      outcome = this.applyInterrupt(outcome);
      reported = true;
      await reportOutcome(claim, outcome, deps.log);
      this.mark('resolved');
    } catch (err) {
      // Nothing above should throw; if something does, the run is still resolved.
      deps.log.error('task run failed', { ...ids, error: (err as Error).stack });
      await (cleanedUp ?? this.boundedCleanup());
      await this.featuresCleanup();
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

  #scopes: TaskScopes | undefined;
  /** The run's one scope object: roles are expanded at most once, and only when needed. */
  private scopes(task: TaskDefinition): TaskScopes {
    return (this.#scopes ??= new TaskScopes(task.scopes ?? [], this.deps.expandScopes));
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
    if (this.exitedOnItsOwn()) return outcome;
    if (r.kind === 'shutdown') return { kind: 'exception', reason: 'worker-shutdown' };
    return INTERNAL_ERROR;
  }

  /**
   * Stages 1 to 6; returns the decided outcome with the footer written. Refusals and outcome
   * rules live in the helpers below; this is the order of things.
   */
  private async stages(
    claim: TaskClaim, task: TaskDefinition, taskLog: TaskLog, startedAt: Date,
    featuresFor: (plan: ContainerPlan) => TaskFeatures, publisher: ArtifactPublisher,
  ): Promise<Outcome> {
    const { deps } = this;
    const finish = (outcome: Outcome, exitCode = -1): Outcome => {
      taskLog.footer(outcome.kind === 'completed', exitCode, startedAt);
      this.phase = { name: 'finishing', exitedOnItsOwn: this.exitedOnItsOwn() };
      return outcome;
    };
    const refuse = (messages: readonly string[]): Outcome => {
      taskLog.error(messages.join('\n'));
      return finish({ kind: 'exception', reason: 'malformed-payload' });
    };
    const fail = (message: string): Outcome => { taskLog.error(message); return finish({ kind: 'failed' }); };
    // Stopped by an interruption: applyInterrupt() decides what is reported.
    const interrupted = (exitCode = -1) => finish(INTERNAL_ERROR, exitCode);

    // 1 validate
    const validation = validatePayload(task.payload, task, { features: deps.features ?? FEATURES });
    for (const w of validation.warnings) taskLog.warn(w);
    if (!validation.ok) return refuse(['`task.payload` is not valid:\n' + validation.errors.map((e) => ` - ${e}`).join('\n')]);

    // 2 plan (with the task's raw scopes; roles are expanded only when those fall short)
    const plan = await this.plan(task, validation.payload, claim);
    if (plan.refusals.length) return refuse(plan.refusals.map((r) => r.message));
    const unsupported = unsupportedFields(plan);
    if (unsupported.length) return refuse(unsupported);
    if (plan.maskedSecrets.length) taskLog.addSecrets(plan.maskedSecrets);
    if (this.interrupted.signal.aborted) return interrupted();

    // 3 prepare: devices present, features set up, image ready, caches attached
    const absent = await missingDevices(plan.devices, plan.workerPool);
    if (absent.length) return refuse(absent);
    const features = this.held.features = featuresFor(plan);
    const before = await features.beforeCreate();
    if (before.refusals.length) return refuse(before.refusals);
    const secrets = maskedSecrets(before.container);
    if (secrets.length) taskLog.addSecrets(secrets);
    if (this.interrupted.signal.aborted) return interrupted();
    let imageId: string;
    try {
      const prepared = await prepareImage(deps.images, plan.image, {
        taskId: this.taskId, scopes: this.scopes(task), credentials: () => claim.credentials,
      }, taskLog, this.interrupted.signal);
      this.held.imageRelease = prepared.release;
      imageId = prepared.imageId;
      this.imageArtifactHash = prepared.artifactHash;
      this.mark('imageReady');
    } catch (err) {
      if (this.interrupted.signal.aborted) return interrupted();
      if (err instanceof ImageUnavailable) return fail(`Pulling docker image has failed.\nError: ${err.message}`);
      throw err;
    }
    if (this.interrupted.signal.aborted) return interrupted();
    try {
      this.held.cacheLease = await deps.caches.acquire(this.taskId, plan.caches, this.scopes(task));
    } catch (err) {
      if (err instanceof CacheScopeError || err instanceof CacheNameError) return refuse([err.message]);
      throw err;
    }
    for (const c of this.held.cacheLease.attached) {
      taskLog.info(`${c.reused ? 'Using existing' : 'Creating new'} cache instance for "${c.name}" at ${c.mountPoint}`);
    }
    if (this.interrupted.signal.aborted) return interrupted();

    // 4 run
    const create = withAdditions(plan.create, before.container, (featureEnv) => containerEnv([envRecord(plan.create.Env), ...featureEnv], plan.reservedEnv));
    const hostConfig = { ...create.HostConfig, Binds: [...(create.HostConfig?.Binds ?? []), ...this.held.cacheLease.binds] };
    try {
      this.held.containerId = await deps.engine.createContainer({ ...create, HostConfig: hostConfig, Image: imageId },
        { workerId: deps.worker.workerId, taskId: this.taskId, runId: this.runId });
    } catch (err) {
      return fail(`Failure to properly start execution environment.\n${(err as Error).message}`);
    }
    const containerId = this.held.containerId;
    this.mark('containerCreated');
    await features.afterCreate(containerId);
    if (this.interrupted.signal.aborted) return interrupted();
    taskLog.info(TASK_STARTING);
    // A feature failing once the container started stops it; the failure is thrown below.
    const featureFailed = new AbortController();
    let started: Promise<void> = Promise.resolve();
    const result = await runContainer(deps.engine, containerId, taskLog, {
      maxRunTimeSeconds: plan.maxRunTimeSeconds, signal: AbortSignal.any([this.interrupted.signal, featureFailed.signal]),
      onStarted: () => {
        this.phase = { name: 'running' };
        started = features.afterStart(containerId).catch((err: unknown) => { featureFailed.abort(); throw err; });
        started.catch(() => undefined);
      },
      // From the exit on, a shutdown no longer changes the result (see interrupt()).
      onExited: (interrupted) => { this.phase = { name: 'exited', onItsOwn: !interrupted }; },
    });
    this.phase = { name: 'exited', onItsOwn: !result.interrupted };
    await started;
    if (result.startError) {
      taskLog.error('Failure to properly start execution environment.');
      taskLog.error(result.startError);
    }
    this.mark('containerExited');
    taskLog.info(TASK_FINISHED);
    this.held.purgeCaches = plan.onExitStatus.purgeCaches.includes(result.exitCode);
    if (!result.startError) await features.afterExit({ containerId, exitCode: result.exitCode, interrupted: result.interrupted, timedOut: result.timedOut });
    // Killed by an interruption, or cancelled / claim lost while the output drained: nothing
    // more is uploaded than the log.
    if (result.interrupted || this.stopUploads.signal.aborted) return interrupted(result.exitCode);

    // 5 collect
    const collected = await collectArtifacts(deps.engine, containerId, plan.artifacts, publisher, taskLog, this.stopUploads.signal);
    this.mark('artifactsCollected');
    if (collected.stopped) return interrupted(result.exitCode);
    // An upload that failed for good is the worker's problem, not the task's: the footer and
    // the resolution say so together.
    if (collected.uploadFailure) return finish(INTERNAL_ERROR, result.exitCode);
    await features.afterArtifacts(collected.uploaded);

    // 6 resolve (decided here, reported by run())
    return finish(exitOutcome(result, plan), result.exitCode);
  }

  /** Stage 2: the plan with the task's raw scopes, again with its roles expanded when those fall short. */
  private async plan(task: TaskDefinition, payload: Payload, claim: TaskClaim): Promise<ContainerPlan> {
    const scopes = this.scopes(task);
    const planWith = (granted: readonly string[]) => planTask({
      taskId: this.taskId, runId: this.runId, task, payload, features: this.deps.features,
      claim: { takenUntil: claim.takenUntil.toISOString() }, worker: this.deps.worker, scopes: granted,
    });
    const plan = planWith(scopes.raw);
    return plan.refusals.length && scopes.raw.length ? planWith(await scopes.expanded()) : plan;
  }

  #cleanupStarted: number | undefined;
  /** Stage 7 within its own deadline: a hung engine call must not keep the run unresolved. */
  private async boundedCleanup(): Promise<void> {
    this.#cleanupStarted ??= Date.now();
    const ms = this.deps.cleanupDeadlineMs ?? CLEANUP_DEADLINE_MS;
    const containerId = this.held.containerId;
    if (!await settleWithin(this.cleanup(), ms)) {
      this.deps.log.error('cleanup exceeded its deadline; resolving the task without waiting for it', {
        taskId: this.taskId, runId: this.runId, containerId, deadlineSeconds: ms / 1000,
      });
    }
  }

  #cleanup: Promise<void> | undefined;
  /**
   * Stage 7, once: remove the container (with its anonymous volumes) whatever happened, then
   * give back the cache instances (only once the container is gone; abandoned when it could not
   * be removed) and the image lease. Never throws. Runs alongside the log upload.
   */
  private cleanup(): Promise<void> {
    return (this.#cleanup ??= this.releaseHeld());
  }

  private async releaseHeld(): Promise<void> {
    const ids = { taskId: this.taskId, runId: this.runId };
    const held = this.held;
    let containerGone = true;
    if (held.containerId) {
      try {
        await this.deps.engine.removeContainer(held.containerId);
      } catch (err) {
        containerGone = false;
        this.deps.log.error('could not remove task container', { ...ids, containerId: held.containerId, error: (err as Error).message });
      }
    }
    // A container that could not be removed may still write to its cache instances: they are
    // given up for good rather than handed to the next task.
    await (containerGone ? held.cacheLease?.release(held.purgeCaches) : held.cacheLease?.abandon())?.catch((err: Error) =>
      this.deps.log.error('could not release cache instances', { ...ids, error: err.message }));
    try { held.imageRelease?.(); } catch (err) {
      this.deps.log.error('could not release the image lease', { ...ids, error: (err as Error).message });
    }
  }

  /**
   * The last of stage 7: the features' cleanup (reverse registry order, once), after the
   * container is gone (a network can be removed only then) and the log hooks ran, within what
   * is left of the cleanup deadline.
   */
  private async featuresCleanup(): Promise<void> {
    const features = this.held.features;
    if (!features) return;
    const ms = this.deps.cleanupDeadlineMs ?? CLEANUP_DEADLINE_MS;
    const left = Math.max(0, ms - (Date.now() - (this.#cleanupStarted ?? Date.now())));
    if (!await settleWithin(features.cleanup(), left)) {
      this.deps.log.error('feature cleanup exceeded the cleanup deadline; resolving the task without waiting for it', {
        taskId: this.taskId, runId: this.runId, features: features.names, deadlineSeconds: ms / 1000,
      });
    }
  }
}

/** Stage 6's rule: exit 0 completes; a status in onExitStatus.retry asks the queue for a rerun. */
function exitOutcome(result: ContainerRunResult, plan: ContainerPlan): Outcome {
  if (result.exitCode === 0 && !result.timedOut && !result.startError) return { kind: 'completed' };
  if (!result.timedOut && !result.startError && plan.onExitStatus.retry.includes(result.exitCode)) {
    return { kind: 'exception', reason: 'intermittent-task' };
  }
  return { kind: 'failed' };
}

/** What the plan asks that this build cannot do yet (the task is refused, malformed-payload). */
function unsupportedFields(plan: ContainerPlan): string[] {
  const out: string[] = [];
  if (plan.encryptedEnv.length) out.push('encryptedEnv not supported: payload.encryptedEnv (encrypted environment variables) is not supported by this worker build yet; pass the values another way (e.g. the secrets service) or run the task on a worker that decrypts them.');
  if (plan.supersederUrl) out.push('supersederUrl not supported: payload.supersederUrl (superseding) is not supported by this worker build; remove it.');
  return out;
}

/** Docker's `NAME=value` list back into a record. */
function envRecord(env: readonly string[] | undefined): Record<string, string> {
  return Object.fromEntries((env ?? []).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
}
