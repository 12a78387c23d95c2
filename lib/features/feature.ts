// The one seam for payload features (after generic-worker's Feature / TaskFeature split and
// docker-worker's feature hooks). A Feature is two halves:
//  - plan(): pure, part of the plan stage: what the feature adds to the container, which
//    artifacts it has copied out, which artifact names it reserves, and any refusal.
//  - forTask(): the per-task half, built once the plan is final and the host has the planned
//    devices (a run refused before that builds none). Building it creates nothing; its hooks
//    are called by the task run in this order, each at most once (credentialsChanged once per
//    reclaim), every one optional except cleanup:
//      beforeCreate -> afterCreate -> afterStart -> credentialsChanged* -> afterExit
//      -> afterArtifacts -> logComplete -> cleanup
//    beforeCreate comes before the image is prepared; logComplete after the task log's upload.
//    cleanup is always called, once, last (after the container is removed), in reverse
//    registry order, inside the run's cleanup deadline, even when an earlier hook threw. A
//    hook that throws is a worker error: the run stops there (the container is killed) and
//    resolves exception/internal-error (logComplete tells every feature first; a throwing
//    credentialsChanged stops the run as a lost claim does).
// Which features this build provides is registry.ts; the names docker-worker knew but this
// build lacks, and the retired ones, are catalogue.ts.
import type { ArtifactPublisher, UploadResult } from '../artifacts/upload.ts';
import type { TaskKeys } from '../crypto/worker-keys.ts';
import type { Engine } from '../docker/engine.ts';
import type { LiveLogServer } from '../log/live-log-server.ts';
import type { TaskLog } from '../log/task-log.ts';
import type { WorkerLog } from '../log/worker-log.ts';
import type { ScopeSet } from '../scopes/task-scopes.ts';
import type { WorkerSettings } from '../task/plan.ts';
import type { ContainerPlan, Payload, PlannedArtifact, TaskCredentials, TaskDefinition } from '../task/types.ts';

/** What the plan stage has decided before it asks the features (pure data). */
export interface FeaturePlanInput {
  taskId: string;
  runId: number;
  task: TaskDefinition;
  payload: Payload;
  worker: WorkerSettings;
  /** `<provisionerId>/<workerType>`. */
  workerPool: string;
  /** The scopes the plan checks against (task.scopes, or their expansion). */
  scopes: readonly string[];
  /** The task log's artifact names (payload.log or the worker's default). */
  logName: string;
  backingLogName: string;
  /** The task's expires (or deadline + 1 year): the default expiry of every artifact. */
  taskExpires: string;
}

/**
 * What a feature adds to the container. The plan merges the additions of every feature, in
 * registry order, into the create spec; reserved env stays the worker's (re-applied last).
 */
export interface ContainerAdditions {
  env?: Record<string, string>;
  /** `host:container[:mode]` binds. */
  binds?: string[];
  devices?: Array<{ PathOnHost: string; PathInContainer: string; CgroupPermissions: string }>;
  capAdd?: string[];
  securityOpt?: string[];
  /** HostConfig.NetworkMode (a per-task network): features that set it must agree (task-network.ts). */
  networkMode?: string;
  /** Aliases of the task container on `networkMode`. */
  networkAliases?: string[];
  /** `name:ip` entries for /etc/hosts. */
  extraHosts?: string[];
  /**
   * A wrapper that becomes the container's Entrypoint (the task's command is its arguments);
   * at most one feature may set it. It replaces the image's own entrypoint.
   */
  entrypoint?: string[];
  /** Values the task log masks (never shown in the log, live or uploaded). */
  maskedSecrets?: string[];
}

/** A feature's part of the plan. */
export interface FeaturePlan<Options = unknown> {
  /** What the per-task half needs to know (goes into the plan as is: plain JSON). */
  options: Options;
  container?: ContainerAdditions;
  /** Artifacts copied out of the container after it exits (stage 5). */
  artifacts?: PlannedArtifact[];
  /** Artifact names the feature uploads itself: a payload artifact of the same name is refused. */
  reservedArtifacts?: string[];
  /** Reasons the task cannot run as asked (exception/malformed-payload), one sentence each. */
  refusals?: string[];
}

/** What a per-task half may use. */
export interface FeatureRunContext {
  taskId: string;
  runId: number;
  /** The full task definition, as the claim gave it. */
  task: TaskDefinition;
  plan: Readonly<ContainerPlan>;
  /** This feature's options, as its plan() returned them. */
  options: unknown;
  worker: WorkerSettings;
  taskLog: TaskLog;
  publisher: ArtifactPublisher;
  liveLogs: LiveLogServer;
  engine: Engine;
  log: WorkerLog;
  /** The task's scopes (raw, or through its roles: expanded at most once per run). */
  scopes: ScopeSet;
  /** The run's current temporary credentials (new after every reclaim). */
  credentials(): TaskCredentials;
  /** `sha256:<hex>` of the image artifact's bytes once the image is ready (task-image / indexed-image). */
  imageArtifactHash(): string | undefined;
  /** The engine's id (`sha256:<hex>`) of the image the container runs, once the image is ready. */
  imageId(): string | undefined;
  /** The worker's keys (loaded by `worker start`); undefined where the run was given none. */
  keys: TaskKeys | undefined;
  /** Aborted when the run is interrupted (cancel, shutdown, lost claim). */
  signal: AbortSignal;
  /** Work the run lets settle before it uploads the task log (e.g. the live log's reference). */
  beforeLogUpload(work: Promise<unknown>): void;
  /** Records a stage mark in the run's 'task timings' (ms since the claim). */
  mark(stage: string): void;
}

/** May refuse the task (exception/malformed-payload) or add to the container (e.g. decrypted env). */
export interface BeforeCreate {
  refusal?: string;
  container?: ContainerAdditions;
}

export interface ContainerExit {
  containerId: string;
  exitCode: number;
  /** Killed by an interruption (cancel, shutdown, lost claim) rather than exiting on its own. */
  interrupted: boolean;
  timedOut: boolean;
}

export interface CompleteLog {
  /** The complete, masked task log file (footer included). */
  path: string;
  /** The run was cancelled: nothing but the task log is uploaded any more. */
  cancelled: boolean;
}

export interface TaskFeature {
  /** Before the container is created (before the image is prepared): refuse, or add to it. */
  beforeCreate?(): Promise<BeforeCreate | void>;
  afterCreate?(containerId: string): Promise<void>;
  afterStart?(containerId: string): Promise<void>;
  /** After every reclaim, with the run's new temporary credentials. */
  credentialsChanged?(credentials: TaskCredentials): Promise<void>;
  /** The container stopped (exited, timed out or killed); it still exists. */
  afterExit?(exit: ContainerExit): Promise<void>;
  /** The artifacts were collected and uploaded, each with its sha256. */
  afterArtifacts?(uploaded: readonly UploadResult[]): Promise<void>;
  /** The task log is complete and its backing copy uploaded (or the upload failed). */
  logComplete?(log: CompleteLog): Promise<void>;
  /** Releases whatever the feature created. Always called, once; must not throw. */
  cleanup(): Promise<void>;
}

export interface Feature<Options = unknown> {
  /** The payload's `features.<name>` switch. */
  readonly name: string;
  /** On when the payload does not mention it (docker-worker's own defaults). */
  readonly defaultEnabled: boolean;
  /**
   * For a feature that is no `payload.features` switch but follows another payload field
   * (encryptedEnv): whether it is on for this payload. `payload.features.<name>` then names no
   * feature (validation says so) and defaultEnabled is not read.
   */
  readonly enabledBy?: (payload: Payload) => boolean;
  /** A scope task.scopes must satisfy (directly or through a role) to turn the feature on. */
  readonly requiredScope?: string;
  /** docker-worker's own sentence when requiredScope is missing (the refusal starts with it). */
  readonly scopeSummary?: string;
  /** Pure: no clock, no I/O. */
  plan(input: FeaturePlanInput): FeaturePlan<Options>;
  /** The per-task half. Building it creates nothing that needs cleanup. */
  forTask(context: FeatureRunContext & { options: Options }): TaskFeature;
}

/** A per-task half with nothing to release. */
export const NOTHING_TO_CLEAN = async (): Promise<void> => undefined;
