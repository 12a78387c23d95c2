// Stage 2 of the task pipeline: a validated task + this worker's settings -> a ContainerPlan.
// Pure and deterministic (no clock, no randomness, no I/O): the same input always gives the
// same plan, so plans are golden-tested. What the task may not do (missing scopes, a
// capability this worker does not allow) becomes a refusal, not an exception.
import { posix } from 'node:path';
import { FEATURES } from './feature-catalog.ts';
import { containerEnv, reservedEnv } from './reserved-env.ts';
import { isSatisfied, missingScopeMessage, payloadScopeRequirements } from './scopes.ts';
import { DEVICE_NAMES } from './types.ts';
import type {
  ContainerCreateSpec, ContainerPlan, DeviceName, FeatureName, FeatureOptions, ImageRef, ImageSpec,
  Payload, PlannedArtifact, PlannedDevice, PlannedFeature, Refusal, TaskDefinition,
} from './types.ts';
import { IMPLEMENTED_FEATURES } from './validate.ts';

export const DEFAULT_SHM_SIZE_BYTES = 1_800_000_000;
export const DEFAULT_LOG_NAME = 'public/logs/live.log';
export const BULK_LOG_NAME = 'public/logs/terminal_bulk.log.gz';
export const DOCKER_SAVE_ARTIFACT_NAME = 'public/dockerImage.tar';

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
  region?: string;
  /** JSON for TASKCLUSTER_WORKER_LOCATION, e.g. {"cloud":"aws","region":"us-east-1"}. */
  workerLocation?: string;
  allowPrivileged: boolean;
  allowDisableSeccomp?: boolean;
  devices: Partial<Record<DeviceName, DeviceSetting>>;
  /** Default 1.8 GB, as docker-worker. */
  shmSizeBytes?: number;
  defaultLogName?: string;
  workerVersion: string;
  hostname: string;
  /** Restrict the container to these CPUs (Docker CpusetCpus), e.g. "3". */
  cpusetCpus?: string;
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
  /** Defaults to IMPLEMENTED_FEATURES. */
  implementedFeatures?: ReadonlySet<string>;
}

export function planTask(input: PlanInput): ContainerPlan {
  const { taskId, runId, task, payload, worker } = input;
  const workerPool = `${worker.provisionerId}/${worker.workerType}`;
  const scopes = input.scopes ?? task.scopes ?? [];
  const image = normalizeImage(payload.image);
  const refusals: Refusal[] = [];
  const refuse = (message: string) => refusals.push({ reason: 'malformed-payload', message });

  const requirements = payloadScopeRequirements(payload, image, workerPool);
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

  const features = planFeatures(input, refuse);
  const enabled = (name: FeatureName) => features.some((f) => f.name === name);
  const logName = liveLogName(payload, worker);
  const taskExpires = task.expires ?? oneYearAfter(task.deadline);
  const reserved = reservedEnv({ taskId, runId, ...worker });

  const hostConfig: NonNullable<ContainerCreateSpec['HostConfig']> = {
    Privileged: privileged,
    ShmSize: worker.shmSizeBytes ?? DEFAULT_SHM_SIZE_BYTES,
    ExtraHosts: ['localhost.localdomain:127.0.0.1'],
  };
  const deviceMappings = devices.filter((d) => d.mount === 'device');
  const binds = devices.filter((d) => d.mount === 'bind').map((d) => `${d.hostPath}:${d.containerPath}`);
  if (deviceMappings.length) hostConfig.Devices = deviceMappings.map((d) => ({ PathOnHost: d.hostPath, PathInContainer: d.containerPath, CgroupPermissions: 'rwm' }));
  if (binds.length) hostConfig.Binds = binds;
  if (enabled('allowPtrace') && granted('payload.features.allowPtrace')) hostConfig.CapAdd = ['SYS_PTRACE'];
  if (unconfined) hostConfig.SecurityOpt = ['seccomp=unconfined'];
  if (worker.cpusetCpus !== undefined) hostConfig.CpusetCpus = worker.cpusetCpus;

  const create: ContainerCreateSpec = {
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

  const caches = Object.keys(payload.cache ?? {}).sort().map((name) => ({ name, mountPoint: payload.cache![name]! }));
  const artifacts: PlannedArtifact[] = !enabled('artifacts') ? [] : Object.keys(payload.artifacts ?? {}).sort().map((name) => {
    const a = payload.artifacts![name]!;
    return { name, type: a.type, path: a.path, expires: a.expires ?? taskExpires };
  });

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
  return (typeof payload.log === 'string' && payload.log) || worker.defaultLogName || DEFAULT_LOG_NAME;
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

function planFeatures(input: PlanInput, refuse: (message: string) => void): PlannedFeature[] {
  const implemented = input.implementedFeatures ?? IMPLEMENTED_FEATURES;
  const requested = input.payload.features ?? {};
  const out: PlannedFeature[] = [];
  for (const { name, defaultEnabled } of FEATURES) {
    const explicit = requested[name];
    if (!(explicit ?? defaultEnabled)) continue;
    if (!implemented.has(name)) {
      if (explicit === true) refuse(`payload.features.${name} is not available on this worker; remove it or set it to false`);
      continue;
    }
    out.push({ name, options: featureOptions(name, input) } as PlannedFeature);
  }
  return out;
}

function featureOptions<K extends FeatureName>(name: K, input: PlanInput): FeatureOptions[K] {
  const logName = liveLogName(input.payload, input.worker);
  const scopes = input.scopes ?? input.task.scopes ?? [];
  const options: { [F in FeatureName]: () => FeatureOptions[F] } = {
    localLiveLog: () => ({ liveLogName: logName, backingLogName: backingLogName(logName) }),
    bulkLog: () => ({ artifactName: BULK_LOG_NAME }),
    artifacts: () => ({}),
    taskclusterProxy: () => ({ scopes: [...(input.task.scopes ?? [])] }),
    chainOfTrust: () => ({}),
    allowPtrace: () => ({}),
    interactive: () => ({}),
    dockerSave: () => ({ artifactName: DOCKER_SAVE_ARTIFACT_NAME, cacheArtifactPrefix: 'public/cache/' }),
    dind: () => ({}),
    relengAPIProxy: () => ({ permissions: relengApiPermissions(scopes) }),
    balrogVPNProxy: () => ({}),
    balrogStageVPNProxy: () => ({}),
  };
  return options[name]();
}

function relengApiPermissions(scopes: readonly string[]): string[] {
  const prefix = 'docker-worker:relengapi-proxy:';
  return [...new Set(scopes.filter((s) => s.startsWith(prefix)).map((s) => s.slice(prefix.length)))].sort();
}

function sortedStatuses(statuses: readonly number[] | undefined): number[] {
  return [...new Set(statuses ?? [])].sort((a, b) => a - b);
}

function oneYearAfter(isoDate: string): string {
  const d = new Date(isoDate);
  d.setUTCFullYear(d.getUTCFullYear() + 1);
  return d.toISOString();
}
