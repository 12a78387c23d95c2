// Stage 2 of the task pipeline: a validated task + this worker's settings -> a ContainerPlan.
// Pure and deterministic (no clock, no randomness, no I/O): the same input always gives the
// same plan, so plans are golden-tested. What the task may not do (missing scopes, a
// capability this worker does not allow) becomes a refusal, not an exception.
import { posix } from 'node:path';
import type { Feature, FeaturePlanInput } from '../features/feature.ts';
import type { SidecarSetting } from '../features/sidecar-setting.ts';
import { maskedSecrets, planFeatures, withAdditions } from '../features/plan-features.ts';
import { FEATURES } from '../features/registry.ts';
import { DEFAULT_LIVE_LOG_NAME } from '../log/backing-log.ts';
import { containerEnv, reservedEnv } from './reserved-env.ts';
import { isSatisfied, missingScopeMessage, payloadScopeRequirements } from './scopes.ts';
import { DEVICE_NAMES } from './types.ts';
import type {
  ContainerCreateSpec, ContainerPlan, DeviceName, ImageRef, ImageSpec, Payload, PlannedDevice, Refusal, TaskDefinition,
} from './types.ts';

export const DEFAULT_SHM_SIZE_BYTES = 1_800_000_000;

export interface DeviceSetting {
  enabled: boolean;
  /** Host path of the device (allocated for this run where the device is per-task, e.g. /dev/video3). */
  path: string;
}

export interface WorkerSettings {
  provisionerId: string;
  workerType: string;
  workerGroup: string;
  workerId: string;
  rootUrl: string;
  instanceType: string;
  publicIp: string;
  /** The host's private address (chain of trust's privateIpAddress; default: publicIp). */
  privateIp?: string;
  /** The cloud instance's id and region, when the host has them (chain of trust). */
  instanceId?: string;
  region?: string;
  /** Chain of trust also signs with the OpenPGP key (public/chainOfTrust.json.asc). */
  chainOfTrustOpenpgp?: boolean;
  /** JSON for TASKCLUSTER_WORKER_LOCATION, e.g. {"cloud":"aws","region":"us-east-1"}. */
  workerLocation?: string;
  allowPrivileged: boolean;
  allowDisableSeccomp?: boolean;
  devices: Partial<Record<DeviceName, DeviceSetting>>;
  /** Default 1.8 GB, as docker-worker. */
  shmSizeBytes?: number;
  /** The task log's name when payload.log does not give one (default public/logs/live.log). */
  defaultLogName?: string;
  workerVersion: string;
  hostname: string;
  /** Sidecar containers by feature name (the `sidecars` setting; balrog features are presets). */
  sidecars?: Readonly<Record<string, Partial<SidecarSetting>>>;
  /** The RelengAPI endpoint and the worker's token (relengAPIProxy); absent when not configured. */
  relengAPI?: { url: string; token: string };
  /** The interactive feature's servers and hold times (absent: that feature refuses to start). */
  interactive?: InteractiveSettings;
}

export interface InteractiveSettings {
  host: string;
  publicHost: string;
  /** PEM certificate and key: https/wss. */
  tls?: { certificatePath: string; keyPath: string };
  minTimeSeconds: number;
  expirySeconds: number;
  /** Where the per-task hold directories go (<stateDir>/tmp). */
  tmpDir: string;
}

export interface PlanInput {
  taskId: string;
  runId: number;
  task: TaskDefinition;
  /** The payload as validatePayload returned it. */
  payload: Payload;
  claim: { takenUntil: string };
  worker: WorkerSettings;
  /** The task's scopes with roles expanded, if known; task.scopes otherwise. */
  scopes?: readonly string[];
  /** The features this build provides; defaults to the registry (lib/features/registry.ts). */
  features?: readonly Feature[];
}

export function planTask(input: PlanInput): ContainerPlan {
  const { taskId, runId, task, payload, worker } = input;
  const workerPool = `${worker.provisionerId}/${worker.workerType}`;
  const scopes = input.scopes ?? task.scopes ?? [];
  const image = normalizeImage(payload.image);
  const refusals: Refusal[] = [];
  const refuse = (message: string) => refusals.push({ reason: 'malformed-payload', message });

  const provided = input.features ?? FEATURES;
  const requirements = payloadScopeRequirements(payload, image, workerPool, provided);
  const granted = (field: string) => requirements.every((r) => r.field !== field || isSatisfied(scopes, r));
  for (const r of requirements) if (!isSatisfied(scopes, r)) refuse(missingScopeMessage(r));

  const caps = payload.capabilities ?? {};
  let privileged = false;
  if (caps.privileged === true) {
    if (!worker.allowPrivileged) refuse(`payload.capabilities.privileged is true, but worker pool ${workerPool} does not allow privileged containers; run the task on a pool configured with allowPrivileged, or remove it`);
    privileged = worker.allowPrivileged && granted('payload.capabilities.privileged');
  }
  let unconfined = false;
  if (caps.disableSeccomp === true) {
    if (!worker.allowDisableSeccomp) refuse(`payload.capabilities.disableSeccomp is true, but worker pool ${workerPool} does not allow containers without a seccomp profile (worker configuration allowDisableSeccomp); run the task on a pool configured with allowDisableSeccomp, or remove it`);
    unconfined = worker.allowDisableSeccomp === true && granted('payload.capabilities.disableSeccomp');
  }
  const devices: PlannedDevice[] = [];
  for (const name of DEVICE_NAMES) {
    if (caps.devices?.[name] !== true) continue;
    const setting = worker.devices[name];
    if (!setting?.enabled) {
      refuse(`payload.capabilities.devices.${name} is true, but worker pool ${workerPool} does not provide the ${name} device (worker configuration devices.${name}.enabled); run the task on a pool that does, or remove it`);
    } else if (granted(`payload.capabilities.devices.${name}`)) {
      devices.push(plannedDevice(name, setting.path));
    }
  }

  const logName = liveLogName(payload, worker);
  const taskExpires = taskExpiry(task);
  const reserved = reservedEnv({ taskId, runId, ...worker });
  const featureInput: FeaturePlanInput = {
    taskId, runId, task, payload, worker, workerPool, scopes, logName, backingLogName: backingLogName(logName), taskExpires,
  };
  const { features, refusals: featureRefusals } = planFeatures(featureInput, provided, payload.features ?? {});
  for (const message of featureRefusals) refuse(message);

  const hostConfig: NonNullable<ContainerCreateSpec['HostConfig']> = {
    Privileged: privileged,
    ShmSize: worker.shmSizeBytes ?? DEFAULT_SHM_SIZE_BYTES,
    ExtraHosts: ['localhost.localdomain:127.0.0.1'],
  };
  const deviceMappings = devices.filter((d) => d.mount === 'device');
  const binds = devices.filter((d) => d.mount === 'bind').map((d) => `${d.hostPath}:${d.containerPath}`);
  if (deviceMappings.length) hostConfig.Devices = deviceMappings.map((d) => ({ PathOnHost: d.hostPath, PathInContainer: d.containerPath, CgroupPermissions: 'rwm' }));
  if (binds.length) hostConfig.Binds = binds;
  if (unconfined) hostConfig.SecurityOpt = ['seccomp=unconfined'];

  const base: ContainerCreateSpec = {
    ...(payload.command?.length ? { Cmd: [...payload.command] } : {}),
    Env: containerEnv([payload.env], reserved),
    Tty: true,
    AttachStdin: false,
    AttachStdout: true,
    AttachStderr: true,
    OpenStdin: false,
    StdinOnce: false,
    HostConfig: hostConfig,
  };
  const additions = features.map((f) => f.container);
  const create = withAdditions(base, additions, (featureEnv) => containerEnv([...featureEnv, payload.env], reserved));

  const caches = Object.keys(payload.cache ?? {}).sort().map((name) => ({ name, mountPoint: payload.cache![name]! }));
  const artifacts = features.flatMap((f) => f.artifacts ?? []);

  const plan: ContainerPlan = {
    taskId,
    runId,
    workerPool,
    image,
    create,
    maxRunTimeSeconds: payload.maxRunTime,
    reservedEnv: reserved,
    encryptedEnv: [...(payload.encryptedEnv ?? [])],
    logName,
    backingLogName: backingLogName(logName),
    artifacts,
    caches,
    devices,
    features,
    maskedSecrets: maskedSecrets(additions),
    onExitStatus: { retry: sortedStatuses(payload.onExitStatus?.retry), purgeCaches: sortedStatuses(payload.onExitStatus?.purgeCaches) },
    taskExpires,
    takenUntil: input.claim.takenUntil,
    refusals,
  };
  if (payload.supersederUrl) plan.supersederUrl = payload.supersederUrl;
  return plan;
}

/** The payload's image as an ImageRef; registry names get `:latest` unless they carry a tag or digest. */
export function normalizeImage(spec: ImageSpec): ImageRef {
  if (typeof spec === 'string') return { kind: 'registry', name: withDefaultTag(spec) };
  switch (spec.type) {
    case 'docker-image': return { kind: 'registry', name: withDefaultTag(spec.name) };
    case 'indexed-image': return { kind: 'indexed-image', namespace: spec.namespace, path: spec.path };
    case 'task-image': return { kind: 'task-image', taskId: spec.taskId, path: spec.path };
  }
}

function withDefaultTag(name: string): string {
  const lastComponent = name.slice(name.lastIndexOf('/') + 1);
  return name.includes('@') || lastComponent.includes(':') ? name : `${name}:latest`;
}

/** payload.log when it is a non-empty string, else the worker's default name. */
export function liveLogName(payload: Pick<Payload, 'log'>, worker: Pick<WorkerSettings, 'defaultLogName'>): string {
  return (typeof payload.log === 'string' && payload.log) || worker.defaultLogName || DEFAULT_LIVE_LOG_NAME;
}

/** `public/logs/live.log` -> `public/logs/live_backing.log`; `a/b.log.txt` -> `a/b.log_backing.txt`. */
export function backingLogName(logName: string): string {
  const { dir, name, ext } = posix.parse(logName);
  return `${dir ? `${dir}/` : ''}${name}_backing${ext}`;
}

function plannedDevice(name: DeviceName, hostPath: string): PlannedDevice {
  switch (name) {
    case 'hostSharedMemory': return { name, hostPath, containerPath: '/dev/shm', mount: 'bind' };
    case 'kvm': return { name, hostPath, containerPath: '/dev/kvm', mount: 'device' };
    default: return { name, hostPath, containerPath: hostPath, mount: 'device' };
  }
}

function sortedStatuses(statuses: readonly number[] | undefined): number[] {
  return [...new Set(statuses ?? [])].sort((a, b) => a - b);
}

/** The default expiry of the task's artifacts and logs: task.expires, or its deadline + 1 year. */
export function taskExpiry(task: Pick<TaskDefinition, 'expires' | 'deadline'>): string {
  return task.expires ?? oneYearAfter(task.deadline);
}

function oneYearAfter(isoDate: string): string {
  const d = new Date(isoDate);
  d.setUTCFullYear(d.getUTCFullYear() + 1);
  return d.toISOString();
}
