// The environment variables the worker sets in every task container. Tasks rely on them to
// know where they run, so neither the payload nor a feature can override them.

export const RESERVED_ENV_NAMES = [
  'TASK_ID',
  'RUN_ID',
  'TASKCLUSTER_ROOT_URL',
  'TASKCLUSTER_WORKER_TYPE',
  'TASKCLUSTER_WORKER_POOL',
  'TASKCLUSTER_WORKER_GROUP',
  'TASKCLUSTER_INSTANCE_TYPE',
  'TASKCLUSTER_PUBLIC_IP',
  'TASKCLUSTER_WORKER_LOCATION',
] as const;

export type ReservedEnvName = (typeof RESERVED_ENV_NAMES)[number];

const reservedNames: ReadonlySet<string> = new Set(RESERVED_ENV_NAMES);

export function isReservedEnvName(name: string): name is ReservedEnvName {
  return reservedNames.has(name);
}

export interface ReservedEnvInput {
  taskId: string;
  runId: number;
  rootUrl: string;
  provisionerId: string;
  workerType: string;
  workerGroup: string;
  instanceType: string;
  publicIp: string;
  /** JSON such as {"cloud":"aws","region":"us-east-1"}; absent on hosts that have no location. */
  workerLocation?: string;
}

export function reservedEnv(input: ReservedEnvInput): Record<string, string> {
  const env: Record<string, string> = {
    TASK_ID: input.taskId,
    RUN_ID: String(input.runId),
    TASKCLUSTER_ROOT_URL: input.rootUrl,
    TASKCLUSTER_WORKER_TYPE: input.workerType,
    TASKCLUSTER_WORKER_POOL: `${input.provisionerId}/${input.workerType}`,
    TASKCLUSTER_WORKER_GROUP: input.workerGroup,
    TASKCLUSTER_INSTANCE_TYPE: input.instanceType,
    TASKCLUSTER_PUBLIC_IP: input.publicIp,
  };
  if (input.workerLocation !== undefined) env.TASKCLUSTER_WORKER_LOCATION = input.workerLocation;
  return env;
}

/**
 * Docker's `Env` list from layers of variables, later layers winning (e.g. feature env, then
 * payload env, then decrypted env), with every reserved name taken from `reserved` only
 * (a reserved name the worker has no value for is left unset). Sorted by name.
 */
export function containerEnv(layers: ReadonlyArray<Readonly<Record<string, string>> | undefined>, reserved: Readonly<Record<string, string>>): string[] {
  const merged = new Map<string, string>();
  for (const layer of layers) {
    for (const [name, value] of Object.entries(layer ?? {})) {
      if (!isReservedEnvName(name)) merged.set(name, value);
    }
  }
  for (const [name, value] of Object.entries(reserved)) merged.set(name, value);
  return [...merged.keys()].sort(byCodeUnits).map((name) => `${name}=${merged.get(name)}`);
}

function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
