// Shared types of the task pipeline: the task as the queue hands it out, its credentials, the
// docker-worker payload (schemas/payload.json), and the ContainerPlan the plan stage produces.
import type Docker from 'dockerode';
import type { FeaturePlan } from '../features/feature.ts';

/** A task definition as the queue returns it (queue `task.json` schema). */
export interface TaskDefinition {
  taskQueueId?: string;
  provisionerId: string;
  workerType: string;
  schedulerId?: string;
  projectId?: string;
  taskGroupId?: string;
  dependencies?: string[];
  requires?: 'all-completed' | 'all-resolved';
  routes?: string[];
  priority?: string;
  retries?: number;
  created: string;
  deadline: string;
  expires?: string;
  scopes: string[];
  payload: unknown;
  metadata?: { name: string; description: string; owner: string; source: string };
  tags?: Record<string, string>;
  extra?: Record<string, unknown>;
}

export interface TaskCredentials {
  clientId: string;
  accessToken: string;
  certificate?: string;
}

// ---------------------------------------------------------------- payload

export type ImageSpec =
  | string
  | { type: 'docker-image'; name: string }
  | { type: 'indexed-image'; namespace: string; path: string }
  | { type: 'task-image'; taskId: string; path: string };

export type ArtifactType = 'file' | 'directory' | 'volume';

export interface ArtifactSpec {
  type: ArtifactType;
  path: string;
  expires?: string;
}

/** The devices a payload can ask for (`phone` is accepted by the schema but never provided). */
export type DeviceName = 'kvm' | 'hostSharedMemory' | 'loopbackVideo' | 'loopbackAudio';
export const DEVICE_NAMES: readonly DeviceName[] = ['hostSharedMemory', 'kvm', 'loopbackAudio', 'loopbackVideo'];

export interface Capabilities {
  privileged?: boolean;
  disableSeccomp?: boolean;
  devices?: Partial<Record<DeviceName, boolean>> & { phone?: Record<string, string>; [other: string]: unknown };
  [other: string]: unknown;
}

/** A payload that passed validatePayload. Unknown top-level fields are kept (older generations allowed them). */
export interface Payload {
  image: ImageSpec;
  maxRunTime: number;
  command?: string[];
  env?: Record<string, string>;
  encryptedEnv?: string[];
  cache?: Record<string, string>;
  artifacts?: Record<string, ArtifactSpec>;
  capabilities?: Capabilities;
  /** Switches of the features (lib/features/), true or false once validated. */
  features?: Record<string, unknown>;
  onExitStatus?: { retry?: number[]; purgeCaches?: number[] };
  /** Any value in the 2018 schema, which did not know the field; only a non-empty string names the log. */
  log?: unknown;
  supersederUrl?: string;
  graphs?: unknown;
  [other: string]: unknown;
}

// ---------------------------------------------------------------- plan

export type { ImageRef } from '../images/image-ref.ts';
import type { ImageRef } from '../images/image-ref.ts';

export interface PlannedArtifact {
  name: string;
  type: ArtifactType;
  /** Absolute path in the container. */
  path: string;
  /** ISO date; the payload's, or the task's `expires`. */
  expires: string;
}

export interface PlannedCache {
  name: string;
  /** Where the cache volume is mounted in the container (the bind itself is added by prepare). */
  mountPoint: string;
}

export interface PlannedDevice {
  name: DeviceName;
  hostPath: string;
  containerPath: string;
  /** `device` -> HostConfig.Devices, `bind` -> HostConfig.Binds (hostSharedMemory). */
  mount: 'device' | 'bind';
}

/** A feature that is on, and what its plan() decided (lib/features/feature.ts). */
export type PlannedFeature = { name: string } & Omit<FeaturePlan, 'refusals'>;

/** A reason the task cannot run as asked; the task resolves exception/<reason> with `message`. */
export interface Refusal {
  reason: 'malformed-payload';
  message: string;
}

export type ContainerCreateSpec = Omit<Docker.ContainerCreateOptions, 'Image'>;

export interface ContainerPlan {
  taskId: string;
  runId: number;
  /** `<provisionerId>/<workerType>` of this worker. */
  workerPool: string;
  image: ImageRef;
  /** Everything for `docker create` except the image id and the cache binds (feature additions included). */
  create: ContainerCreateSpec;
  maxRunTimeSeconds: number;
  /** The worker's reserved variables; whoever adds env later (a feature's beforeCreate) must re-apply these last. */
  reservedEnv: Record<string, string>;
  /** Still encrypted; this build refuses a task that has any (nothing decrypts them yet). */
  encryptedEnv: string[];
  logName: string;
  backingLogName: string;
  artifacts: PlannedArtifact[];
  caches: PlannedCache[];
  devices: PlannedDevice[];
  features: PlannedFeature[];
  /** Values the task log masks (from the features' additions). */
  maskedSecrets: string[];
  onExitStatus: { retry: number[]; purgeCaches: number[] };
  supersederUrl?: string;
  taskExpires: string;
  takenUntil: string;
  /** Non-empty: do not run; resolve exception/malformed-payload with these messages. */
  refusals: Refusal[];
}
