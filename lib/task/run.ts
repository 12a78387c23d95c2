// One claimed task run, from claim to resolution: the stages of the spine in order.
// Contract (as Buildkite's job runner): constructing creates nothing; run() blocks until the
// run is resolved and never throws; interrupt() may come at any time; cleanup always runs,
// once, with its own deadline (task-resources.ts). Every claimed run is reported exactly once
// (or, when it was cancelled, deliberately not at all). The run executes its plan: log names,
// expiry, env, the container spec and the features (lib/features/, hooks in the order
// feature.ts gives) all come from the ContainerPlan.
//
// How an interruption changes the result (phase.ts and outcome.ts decide):
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
import { publishBackingLog } from '../log/backing-log.ts';
import { TASK_STARTING, TASK_FINISHED, formatErrorLine } from '../log/format.ts';
import { appendFile } from 'node:fs/promises';
import type { WorkerLog } from '../log/worker-log.ts';
import { ArtifactPublisher, type StorageType } from '../artifacts/upload.ts';
import { TaskClaim } from '../queue/task-claim.ts';
import type { RunJournal } from '../queue/run-journal.ts';
import { Reclaimer } from '../queue/reclaimer.ts';
import { queueClient, type ClaimResponse, type QueueClient } from '../queue/taskcluster.ts';
import type { TaskKeys } from '../crypto/worker-keys.ts';
import type { ContainerAdditions, Feature } from '../features/feature.ts';
import { withAdditions, maskedSecrets } from '../features/plan-features.ts';
import { FEATURES } from '../features/registry.ts';
import { TaskFeatures } from '../features/task-features.ts';
import { TaskScopes, type ScopeExpander } from '../scopes/task-scopes.ts';
import { validatePayload } from './validate.ts';
import { planTask, liveLogName, backingLogName, taskExpiry, type WorkerSettings } from './plan.ts';
import { prepareImage, ImageUnavailable, type ArtifactHash, type ImageStore } from './prepare-image.ts';
import { runContainer, engineUnreachableLine } from './container-run.ts';
import { unreachableEngine } from '../docker/engine-error.ts';
import { argumentLimitProblem } from './argument-limits.ts';
import { collectArtifacts } from './collect.ts';
import { missingDevices } from './device-check.ts';
import type { RunCompanion } from '../queue/superseder.ts';
import {
  INTERNAL_ERROR, MALFORMED_PAYLOAD, WORKER_SHUTDOWN, applyInterrupt, coversSuperseded, describeOutcome, exitOutcome, interruptLine, reportOutcome,
  type Interrupt, type Outcome,
} from './outcome.ts';
import { containerEnv } from './reserved-env.ts';
import { exitedOnItsOwn, finishing, takesInterrupt, type Phase } from './phase.ts';
import { TaskResources } from './task-resources.ts';
import type { ContainerPlan, Payload, TaskDefinition } from './types.ts';
import type { VolumeCaches } from '../cache/volume-cache.ts';

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
  /** Artifact uploads of one task at once (default DEFAULT_UPLOAD_PARALLELISM). */
  uploadParallelism?: number;
  reclaimMarginSeconds: number;
  cancelPollSeconds: number;
  tmpDir: string;
  /** How long stage 7 may take before the run is resolved without waiting for it (default 60 s). */
  cleanupDeadlineMs?: number;
  /** Where the run is recorded until it is reported, for crash recovery (recover-runs.ts). */
  journal?: RunJournal;
  /** The worker's keys (encryptedEnv, chainOfTrust); a run without them refuses neither, it fails them as a worker error. */
  keys?: TaskKeys;
  /** Values every task log masks (the worker's own access token). */
  maskedSecrets?: readonly string[];
}

const CANCEL_MESSAGE = 'Task was canceled by another entity. This can happen using a taskcluster client or by cancelling a task within Treeherder.';
const DEADLINE_MESSAGE = 'Task deadline exceeded: the queue resolved this run exception/deadline-exceeded, so the worker stopped it. Give the task a later deadline.';

/** What stages 1–3 hand to stage 4. */
interface Prepared {
  plan: ContainerPlan;
  imageId: string;
  features: TaskFeatures;
  /** Additions the features made in beforeCreate (e.g. decrypted env). */
  lateAdditions: ContainerAdditions[];
}

/** What the run needs of itself while its stages run. */
interface RunContext {
  claim: TaskClaim;
  task: TaskDefinition;
  taskLog: TaskLog;
  publisher: ArtifactPublisher;
  /** Writes the footer and moves to `finishing`: the result is decided. */
  finish(outcome: Outcome, exitCode?: number): Outcome;
  /** Work the task log upload waits for (the live log's reference). */
  beforeLogUpload: Promise<unknown>[];
}

export class TaskRun {
  readonly taskId: string;
  readonly runId: number;
  private readonly deps: TaskRunDeps;
  private readonly claimResponse: ClaimResponse;
  /** Tasks this run supersedes (lib/queue/superseder.ts): lines for its log, work before its report. */
  private readonly companion: RunCompanion | undefined;
  /** Aborted by an interruption that stops the task: pulls are abandoned, the container is killed. */
  private readonly interrupted = new AbortController();
  /** Aborted by a cancel or a lost claim: no further artifact is uploaded. */
  private readonly stopUploads = new AbortController();
  private interruptReason: Interrupt | undefined;
  private phase: Phase = { name: 'preparing' };
  private taskLog: TaskLog | undefined;
  private readonly resources: TaskResources;
  #scopes: TaskScopes | undefined;
  /** sha256 of the image artifact's bytes (task-image / indexed-image), for chain of trust. */
  imageArtifactHash: ArtifactHash | undefined;
  /** The engine's id of the image the container runs, once ready (chain of trust's imageHash). */
  imageId: string | undefined;
  /** Milliseconds since the claim at which each stage ended: the worker's own breakdown. */
  private readonly timings: Record<string, number> = {};
  private readonly claimedAt = Date.now();
  private mark(stage: string): void { this.timings[stage] = Date.now() - this.claimedAt; }

  constructor(deps: TaskRunDeps, claim: ClaimResponse, companion?: RunCompanion) {
    this.deps = deps;
    this.claimResponse = claim;
    this.companion = companion;
    this.taskId = claim.status.taskId;
    this.runId = claim.runId;
    this.resources = new TaskResources({ taskId: this.taskId, runId: this.runId, engine: deps.engine, log: deps.log, deadlineMs: deps.cleanupDeadlineMs });
  }

  /** Stops the run early: cancel (the queue resolved it), shutdown or a lost claim. */
  interrupt(reason: Interrupt): void {
    if (this.interruptReason || !takesInterrupt(this.phase, reason)) return;
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
    const settle = (o: Outcome) => applyInterrupt(o, this.interruptReason, exitedOnItsOwn(this.phase));
    try {
      claim = new TaskClaim(deps.rootUrl, this.claimResponse);
      const task = this.claimResponse.task as unknown as TaskDefinition;
      const startedAt = new Date();
      reclaimer = this.startReclaimer(claim);
      const current = claim;
      const publisher = new ArtifactPublisher({
        rootUrl: deps.rootUrl, taskId: this.taskId, runId: this.runId, credentials: () => current.credentials,
        storageType: deps.storageType, retry: { retries: deps.uploadRetries }, tmpDir: deps.tmpDir,
      });
      const payload = task.payload as { log?: unknown; cache?: Record<string, string> } | undefined;
      // The plan decides these for a valid payload; a payload that does not validate has no
      // plan, and its log is still uploaded, under the names the plan would have given it.
      const live = liveLogName(payload ?? {}, deps.worker);
      let logNames = { live, backing: backingLogName(live) };
      let expires = taskExpiry(task);
      const beforeLogUpload: Promise<unknown>[] = [];
      try {
        // The worker's and the run's credentials are masked before the first line is written.
        taskLog = await TaskLog.create({ dir: deps.tmpDir, log: deps.log, secrets: [...deps.maskedSecrets ?? [], ...credentialSecrets(claim.credentials)] });
        taskLog.header({
          taskId: this.taskId, workerId: deps.worker.workerId, workerGroup: deps.worker.workerGroup,
          workerNodeType: deps.worker.instanceType, workerType: deps.worker.workerType,
          workerPool: `${deps.worker.provisionerId}/${deps.worker.workerType}`,
          workerVersion: deps.worker.workerVersion, publicIp: deps.worker.publicIp, hostname: deps.worker.hostname,
          caches: payload?.cache && typeof payload.cache === 'object' ? payload.cache : undefined,
        });
        this.taskLog = taskLog;
        deps.journal?.write({
          taskId: this.taskId, runId: this.runId, credentials: claim.credentials,
          takenUntil: claim.takenUntil.toISOString(), logPath: taskLog.path, logNames, expires,
        });
        for (const line of this.companion?.logLines ?? []) taskLog[line.level](line.text);
        if (this.interruptReason) taskLog.error(interruptLine(this.interruptReason));
        const log = taskLog;
        const ctx: RunContext = {
          claim, task, taskLog, publisher, beforeLogUpload,
          finish: (o, exitCode = -1) => {
            log.footer(o.kind === 'completed', exitCode, startedAt);
            this.phase = finishing(this.phase);
            return o;
          },
        };
        const prepared = await this.prepare(ctx);
        if ('plan' in prepared) {
          logNames = { live: prepared.plan.logName, backing: prepared.plan.backingLogName };
          expires = prepared.plan.taskExpires;
          deps.journal?.update(this.taskId, this.runId, { logNames, expires });
          outcome = await this.execute(ctx, prepared);
        } else {
          outcome = prepared.outcome;
        }
      } catch (err) {
        deps.log.error('task run failed', { ...ids, error: (err as Error).stack });
        // An engine that does not answer is the host's problem, not the task's: the queue reruns it.
        const engineAway = unreachableEngine(err);
        taskLog?.error(engineAway ? engineUnreachableLine(engineAway.message) : `Worker error: ${(err as Error).message}`);
        if (this.phase.name !== 'finishing') taskLog?.footer(false, -1, startedAt);
        outcome = engineAway ? WORKER_SHUTDOWN : INTERNAL_ERROR;
      } finally {
        this.phase = finishing(this.phase);
        cleanedUp = this.resources.release().then(() => this.mark('cleanedUp'));
      }
      outcome = settle(outcome);
      // A cancelled run's log is uploaded too: the queue accepts artifacts of a run resolved
      // exception for a while, and the owner wants to see where the task was when it stopped.
      if (taskLog) outcome = await this.uploadLog(taskLog, publisher, { names: logNames, expires, beforeLogUpload }, outcome);
      this.mark('logUploaded');
      await cleanedUp;
      await this.resources.releaseFeatures();
      reclaimer.stop();
      outcome = settle(outcome);
      await this.beforeReport(outcome, claim);
      reported = true;
      await reportOutcome(claim, outcome, deps.log);
      this.mark('resolved');
    } catch (err) {
      // Nothing above should throw; if something does, the run is still resolved.
      deps.log.error('task run failed', { ...ids, error: (err as Error).stack });
      await (cleanedUp ?? this.resources.release());
      await this.resources.releaseFeatures();
      if (!reported) {
        reported = true;
        outcome = this.interruptReason?.kind === 'cancel' ? { kind: 'cancelled' } : INTERNAL_ERROR;
        await this.beforeReport(outcome, claim ?? this.fallbackClaim());
        await reportOutcome(claim ?? this.fallbackClaim(), outcome, deps.log).catch((e: Error) =>
          deps.log.error('error resolving task', { ...ids, error: e.message }));
      }
    } finally {
      reclaimer?.stop();
      await taskLog?.close().catch(() => undefined);
      await taskLog?.release().catch(() => undefined);
      if (reported) deps.journal?.remove(this.taskId, this.runId);
      deps.log.info('task timings', { ...ids, outcome: describeOutcome(outcome), ms: this.timings });
    }
  }

  /** The companion's work before the report (superseded tasks resolved); never throws. */
  private async beforeReport(outcome: Outcome, claim: TaskClaim): Promise<void> {
    if (!this.companion) return;
    try {
      await this.companion.beforeReport(coversSuperseded(outcome) ? 'resolved' : 'not-covered', claim);
    } catch (err) {
      this.deps.log.error('resolving superseded tasks failed', { taskId: this.taskId, runId: this.runId, error: (err as Error).message });
    }
  }

  /** Keeps the claim alive; a reclaim's new credentials go to the features. */
  private startReclaimer(claim: TaskClaim): Reclaimer {
    const { deps } = this;
    const reclaimer = new Reclaimer({
      claim, log: deps.log, marginSeconds: deps.reclaimMarginSeconds, cancelPollSeconds: deps.cancelPollSeconds,
      statusQueue: deps.statusQueue,
      onCancelled: (_why, reasonResolved) =>
        this.interrupt({ kind: 'cancel', message: reasonResolved === 'deadline-exceeded' ? DEADLINE_MESSAGE : CANCEL_MESSAGE }),
      onLost: (err) => this.interrupt({ kind: 'lost', message: err.message }),
      onReclaimed: () => {
        deps.journal?.update(this.taskId, this.runId, { credentials: claim.credentials, takenUntil: claim.takenUntil.toISOString() });
        this.taskLog?.addSecrets(credentialSecrets(claim.credentials));
        this.resources.features?.credentialsChanged(claim.credentials).catch((err: Error) => {
          deps.log.error('a feature could not take the new credentials', { taskId: this.taskId, runId: this.runId, error: err.message });
          this.taskLog?.error(`Worker error: ${err.message}`);
          this.interrupt({ kind: 'lost', message: err.message });
        });
      },
    });
    reclaimer.start();
    return reclaimer;
  }

  /**
   * The backing log (after the work it waits for), then the features' logComplete. A failed
   * upload makes a run that would otherwise complete or fail exception/internal-error.
   */
  private async uploadLog(
    taskLog: TaskLog, publisher: ArtifactPublisher,
    log: { names: { live: string; backing: string }; expires: string; beforeLogUpload: Promise<unknown>[] }, outcome: Outcome,
  ): Promise<Outcome> {
    const ids = { taskId: this.taskId, runId: this.runId };
    const worse = (o: Outcome) => (o.kind === 'exception' || o.kind === 'cancelled' ? o : INTERNAL_ERROR);
    try {
      await Promise.allSettled(log.beforeLogUpload);
      await taskLog.close();
      if (taskLog.failure) {
        // The log stopped growing (a full disk): what is uploaded is incomplete, so the run is not
        // the task's success or failure but the worker's problem; the line goes in if it fits.
        this.deps.log.error('the task log is incomplete', { ...ids, error: taskLog.failure.message, bytes: taskLog.bytesOnDisk });
        await appendFile(taskLog.path, formatErrorLine(`The worker could not write the whole task log (${taskLog.failure.message}); the log above is incomplete.`)).catch(() => undefined);
        outcome = worse(outcome);
      }
      await publishBackingLog(publisher, taskLog, log.expires, log.names);
    } catch (err) {
      this.deps.log.error('could not upload the task log', { ...ids, error: (err as Error).message });
      outcome = worse(outcome);
    }
    try {
      await this.resources.features?.logComplete({ path: taskLog.path, cancelled: outcome.kind === 'cancelled' });
    } catch (err) {
      this.deps.log.error('a feature failed once the log was complete', { ...ids, error: (err as Error).message });
      outcome = worse(outcome);
    }
    return outcome;
  }

  /** The run's one scope object: roles are expanded at most once, and only when needed. */
  private scopes(task: TaskDefinition): TaskScopes {
    return (this.#scopes ??= new TaskScopes(task.scopes ?? [], this.deps.expandScopes));
  }

  /** A claim object for reporting when the TaskClaim itself could not be built. */
  private fallbackClaim(): TaskClaim {
    const client = queueClient({ rootUrl: this.deps.rootUrl, credentials: this.claimResponse.credentials });
    return { taskId: this.taskId, runId: this.runId, queue: () => client } as unknown as TaskClaim;
  }

  /** Stages 1–3: validate, plan, features' beforeCreate, devices, image, caches; or the outcome that ends the run here. */
  private async prepare(ctx: RunContext): Promise<Prepared | { outcome: Outcome }> {
    const { deps } = this;
    const { task, taskLog, claim } = ctx;
    const stop = (outcome: Outcome) => ({ outcome: ctx.finish(outcome) });
    const refuse = (messages: readonly string[]) => { taskLog.error(messages.join('\n')); return stop(MALFORMED_PAYLOAD); };
    // Stopped by an interruption: applyInterrupt() decides what is reported.
    const interrupted = () => stop(INTERNAL_ERROR);

    // 1 validate
    const validation = validatePayload(task.payload, task, { features: deps.features ?? FEATURES });
    for (const w of validation.warnings) taskLog.warn(w);
    if (!validation.ok) return refuse(['`task.payload` is not valid:\n' + validation.errors.map((e) => ` - ${e}`).join('\n')]);

    // 2 plan (with the task's raw scopes; roles are expanded only when those fall short)
    const plan = await this.plan(task, validation.payload, claim);
    if (plan.refusals.length) return refuse(plan.refusals.map((r) => r.message));
    if (plan.maskedSecrets.length) taskLog.addSecrets(plan.maskedSecrets);
    if (this.interrupted.signal.aborted) return interrupted();

    // 3 prepare: devices present, features set up, image ready, caches attached
    const absent = await missingDevices(plan.devices, plan.workerPool);
    if (absent.length) return refuse(absent);
    const features = this.resources.features = new TaskFeatures(deps.features ?? FEATURES, {
      taskId: this.taskId, runId: this.runId, task, plan, worker: deps.worker, taskLog, publisher: ctx.publisher, keys: deps.keys,
      liveLogs: deps.liveLogs, engine: deps.engine, log: deps.log, scopes: this.scopes(task),
      credentials: () => claim.credentials, signal: this.interrupted.signal,
      imageArtifactHash: () => this.imageArtifactHash,
      imageId: () => this.imageId,
      beforeLogUpload: (work) => { ctx.beforeLogUpload.push(work); },
      mark: (stage) => this.mark(stage),
    });
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
      this.resources.imageRelease = prepared.release;
      imageId = this.imageId = prepared.imageId;
      this.imageArtifactHash = prepared.artifactHash;
      this.mark('imageReady');
    } catch (err) {
      if (this.interrupted.signal.aborted) return interrupted();
      if (err instanceof ImageUnavailable) {
        taskLog.error(`Pulling docker image has failed.\nError: ${err.message}`);
        return stop({ kind: 'failed' });
      }
      throw err;
    }
    if (this.interrupted.signal.aborted) return interrupted();
    // Validation has refused bad cache names and the plan missing cache scopes; the cache
    // layer checks both again (through the same TaskScopes), so a throw here is a worker error.
    this.resources.cacheLease = await deps.caches.acquire(this.taskId, plan.caches, this.scopes(task));
    for (const c of this.resources.cacheLease.attached) {
      taskLog.info(`${c.reused ? 'Using existing' : 'Creating new'} cache instance for "${c.name}" at ${c.mountPoint}`);
    }
    if (this.interrupted.signal.aborted) return interrupted();
    return { plan, imageId, features, lateAdditions: before.container };
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

  /** Stages 4–6: create and run the container, collect the artifacts, decide the result. */
  private async execute(ctx: RunContext, { plan, imageId, features, lateAdditions }: Prepared): Promise<Outcome> {
    const { deps } = this;
    const { taskLog, publisher } = ctx;
    // Stopped by an interruption: applyInterrupt() decides what is reported.
    const interrupted = (exitCode = -1) => ctx.finish(INTERNAL_ERROR, exitCode);

    // 4 run: the plan's spec, with what the features added in beforeCreate and the cache binds
    const create = withAdditions(plan.create, lateAdditions, (featureEnv) => containerEnv([envRecord(plan.create.Env), ...featureEnv], plan.reservedEnv));
    const binds = [...(create.HostConfig?.Binds ?? []), ...this.resources.cacheLease!.binds];
    const tooLong = argumentLimitProblem(create.Env ?? [], [...(create.Entrypoint as string[] | undefined ?? []), ...(create.Cmd as string[] | undefined ?? [])]);
    if (tooLong) {
      taskLog.error(`Failure to properly start execution environment.\n${tooLong}`);
      return ctx.finish({ kind: 'failed' });
    }
    try {
      this.resources.containerId = await deps.engine.createContainer({ ...create, HostConfig: { ...create.HostConfig, Binds: binds }, Image: imageId },
        { workerId: deps.worker.workerId, taskId: this.taskId, runId: this.runId });
    } catch (err) {
      if (unreachableEngine(err)) throw err; // the host's problem: run() resolves it worker-shutdown
      taskLog.error(`Failure to properly start execution environment.\n${(err as Error).message}`);
      return ctx.finish({ kind: 'failed' });
    }
    const containerId = this.resources.containerId;
    deps.journal?.update(this.taskId, this.runId, { containerId });
    this.mark('containerCreated');
    await features.afterCreate(containerId);
    if (this.interrupted.signal.aborted) return interrupted();
    taskLog.info(TASK_STARTING);
    // A feature failing once the container started stops it; the failure is thrown below.
    const featureFailed = new AbortController();
    let started: Promise<void> = Promise.resolve();
    const result = await runContainer(deps.engine, containerId, taskLog, {
      maxRunTimeSeconds: plan.maxRunTimeSeconds, signal: AbortSignal.any([this.interrupted.signal, featureFailed.signal]),
      tty: create.Tty !== false,
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
    if (result.engineStopped) taskLog.error(result.engineStopped);
    this.resources.purgeCaches = !result.engineStopped && plan.onExitStatus.purgeCaches.includes(result.exitCode);
    if (!result.startError) await features.afterExit({ containerId, exitCode: result.exitCode, interrupted: result.interrupted || Boolean(result.engineStopped), timedOut: result.timedOut });
    // Killed by an interruption, or cancelled / claim lost while the output drained: nothing
    // more is uploaded than the log.
    if (result.interrupted || this.stopUploads.signal.aborted) return interrupted(result.exitCode);
    // The engine ended the container, not the task: no artifacts, and the queue reruns it.
    if (result.engineStopped) return ctx.finish(WORKER_SHUTDOWN, result.exitCode);

    // 5 collect
    const collected = await collectArtifacts(deps.engine, containerId, plan.artifacts, publisher, taskLog, {
      signal: this.stopUploads.signal, parallelism: deps.uploadParallelism,
    });
    this.mark('artifactsCollected');
    if (collected.stopped) return interrupted(result.exitCode);
    // An upload that failed for good is the worker's problem, not the task's: the footer and
    // the resolution say so together.
    if (collected.uploadFailure) return ctx.finish(INTERNAL_ERROR, result.exitCode);
    await features.afterArtifacts(collected.uploaded);

    // 6 resolve (decided here, reported by run())
    return ctx.finish(exitOutcome(result, plan.onExitStatus.retry), result.exitCode);
  }
}

/** What of a run's temporary credentials must never show in its log: the access token and the certificate's signature. */
function credentialSecrets(credentials: { accessToken: string; certificate?: string | object }): string[] {
  const out = [credentials.accessToken];
  const certificate = credentials.certificate;
  if (certificate) {
    try {
      const signature = (typeof certificate === 'string' ? JSON.parse(certificate) : certificate)?.signature;
      if (typeof signature === 'string') out.push(signature);
    } catch { /* not JSON: nothing more to mask */ }
  }
  return out;
}

/** Docker's `NAME=value` list back into a record. */
function envRecord(env: readonly string[] | undefined): Record<string, string> {
  return Object.fromEntries((env ?? []).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
}
