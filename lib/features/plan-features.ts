// The features' part of the plan stage (pure): which features are on, and what each adds.
// A feature the payload turns on is planned when this build provides it and refused when it
// does not; one that is on by default is simply left out when not provided. A feature whose
// requiredScope the task lacks is not planned (the plan refuses the task for the scope).
import { satisfiesAnyOf } from '../scopes/task-scopes.ts';
import type { ContainerCreateSpec, PlannedFeature } from '../task/types.ts';
import { knownFeatures } from './catalogue.ts';
import type { ContainerAdditions, Feature, FeaturePlanInput } from './feature.ts';

export interface PlannedFeatures {
  features: PlannedFeature[];
  refusals: string[];
}

export function planFeatures(input: FeaturePlanInput, provided: readonly Feature[], requested: Readonly<Record<string, unknown>>): PlannedFeatures {
  const features: PlannedFeature[] = [];
  const refusals: string[] = [];
  const reservedBy = new Map<string, string>();
  for (const known of knownFeatures(provided)) {
    if (!known.provided && requested[known.name] === true) refusals.push(`payload.features.${known.name} is not available on this worker; remove it or set it to false`);
  }
  for (const feature of provided) {
    const explicit = requested[feature.name];
    const on = feature.enabledBy ? feature.enabledBy(input.payload) : explicit === undefined ? feature.defaultEnabled : explicit === true;
    if (!on) continue;
    if (feature.requiredScope && !satisfiesAnyOf(input.scopes, [feature.requiredScope])) continue;
    const { refusals: refused, ...planned } = feature.plan(input);
    refusals.push(...(refused ?? []));
    for (const name of planned.reservedArtifacts ?? []) reservedBy.set(name, feature.name);
    features.push({ name: feature.name, ...planned });
  }
  for (const name of Object.keys(input.payload.artifacts ?? {})) {
    const owner = reservedBy.get(name);
    if (owner) refusals.push(`payload.artifacts["${name}"] is an artifact the ${owner} feature uploads itself; rename the artifact or turn ${owner} off`);
  }
  refusals.push(...conflicts(features, 'networkMode'), ...conflicts(features, 'entrypoint'));
  return { features, refusals };
}

/** Features that set `field` to different values (several may share one per-task network). */
function conflicts(features: readonly PlannedFeature[], field: 'networkMode' | 'entrypoint'): string[] {
  const setting = features.filter((f) => f.container?.[field] !== undefined);
  const values = new Set(setting.map((f) => JSON.stringify(f.container![field])));
  const setters = setting.map((f) => f.name);
  return values.size > 1 ? [`payload.features ${setters.join(' and ')} cannot be used together (each sets the container's ${field}); turn one of them off`] : [];
}

/**
 * The create spec with every feature's container additions, in registry order. Env: the
 * features' variables, then the payload's (`payloadEnv`), then the worker's reserved ones
 * (`envFrom` builds Docker's Env from those layers).
 */
export function withAdditions(
  create: ContainerCreateSpec, additions: ReadonlyArray<ContainerAdditions | undefined>,
  envFrom: (featureEnv: ReadonlyArray<Record<string, string> | undefined>) => string[],
): ContainerCreateSpec {
  const present = additions.filter((a): a is ContainerAdditions => a !== undefined);
  if (present.length === 0) return create;
  const host = { ...create.HostConfig };
  const out: ContainerCreateSpec = { ...create, HostConfig: host };
  const append = <K extends 'Binds' | 'CapAdd' | 'SecurityOpt' | 'ExtraHosts'>(key: K, values: string[] | undefined) => {
    if (values?.length) host[key] = [...(host[key] ?? []), ...values];
  };
  for (const a of present) {
    append('Binds', a.binds);
    append('CapAdd', a.capAdd);
    append('SecurityOpt', a.securityOpt);
    append('ExtraHosts', a.extraHosts);
    if (a.devices?.length) host.Devices = [...(host.Devices ?? []), ...a.devices];
    if (a.networkMode !== undefined) {
      host.NetworkMode = a.networkMode;
      if (a.networkAliases?.length) out.NetworkingConfig = { EndpointsConfig: { [a.networkMode]: { Aliases: [...a.networkAliases] } } };
    }
    if (a.entrypoint !== undefined) out.Entrypoint = [...a.entrypoint];
  }
  if (present.some((a) => a.env)) out.Env = envFrom(present.map((a) => a.env));
  return out;
}

/** Every value the features ask the task log to mask. */
export function maskedSecrets(additions: ReadonlyArray<ContainerAdditions | undefined>): string[] {
  return additions.flatMap((a) => a?.maskedSecrets ?? []);
}
