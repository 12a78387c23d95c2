// The docker-worker scopes a task needs for what its payload asks, checked against task.scopes
// (or their expansion) with taskcluster-lib-scopes. Pure: no network, no configuration.
//
//   privileged       docker-worker:capability:privileged[:<provisionerId>/<workerType>]
//   disableSeccomp   docker-worker:capability:disableSeccomp[:<provisionerId>/<workerType>]
//   device <d>       docker-worker:capability:device:<d>[:<provisionerId>/<workerType>]
//   cache <name>     docker-worker:cache:<name>[:<provisionerId>/<workerType>]
//   feature <f>      the feature's requiredScope (lib/features/: registry.ts, catalogue.ts)
//   private image    docker-worker:image:<name:tag>   (registry images pulled with worker credentials)
//   image artifact   queue:get-artifact:<path>        (task-image / indexed-image not under public/)
import { knownFeatures } from '../features/catalogue.ts';
import type { Feature } from '../features/feature.ts';
import { FEATURES } from '../features/registry.ts';
import { payloadField } from './schema-errors.ts';
import { cacheRequirement } from '../cache/cache-scopes.ts';
import { imageArtifactRequirement } from '../images/artifact-image.ts';
import { poolScoped, type ScopeRequirement } from '../scopes/scope-requirement.ts';
import type { DeviceName, ImageRef, Payload } from './types.ts';
import { DEVICE_NAMES } from './types.ts';

export { isSatisfied, missingScopeMessage, missingScopes, type ScopeRequirement } from '../scopes/scope-requirement.ts';
export { cacheRequirement, imageArtifactRequirement };

export function privilegedRequirement(workerPool: string): ScopeRequirement {
  return { field: 'payload.capabilities.privileged', anyOf: poolScoped('docker-worker:capability:privileged', workerPool), summary: 'Insufficient scopes to run task in privileged mode.' };
}

export function disableSeccompRequirement(workerPool: string): ScopeRequirement {
  return { field: 'payload.capabilities.disableSeccomp', anyOf: poolScoped('docker-worker:capability:disableSeccomp', workerPool) };
}

export function deviceRequirement(device: DeviceName, workerPool: string): ScopeRequirement {
  return { field: `payload.capabilities.devices.${device}`, anyOf: poolScoped(`docker-worker:capability:device:${device}`, workerPool), summary: 'Insufficient scopes to attach devices to task container.' };
}

export function featureRequirement(feature: string, provided: readonly Feature[] = FEATURES): ScopeRequirement | undefined {
  const known = knownFeatures(provided).find((f) => f.name === feature);
  if (!known?.requiredScope) return undefined;
  return { field: `payload.features.${feature}`, anyOf: [known.requiredScope], ...(known.scopeSummary ? { summary: known.scopeSummary } : {}) };
}

/** For a registry image the worker pulls with its own registry credentials (checked by the image store). */
export function privateImageRequirement(imageName: string): ScopeRequirement {
  return { field: 'payload.image', anyOf: [`docker-worker:image:${imageName}`] };
}

/**
 * Every scope requirement of a payload, in a fixed order: capabilities, devices, caches,
 * features. Registry credentials are not known here: see privateImageRequirement.
 */
export function payloadScopeRequirements(payload: Payload, image: ImageRef, workerPool: string, provided: readonly Feature[] = FEATURES): ScopeRequirement[] {
  const out: ScopeRequirement[] = [];
  const caps = payload.capabilities ?? {};
  if (caps.privileged === true) out.push(privilegedRequirement(workerPool));
  if (caps.disableSeccomp === true) out.push(disableSeccompRequirement(workerPool));
  for (const device of DEVICE_NAMES) {
    if (caps.devices?.[device] === true) out.push(deviceRequirement(device, workerPool));
  }
  for (const name of Object.keys(payload.cache ?? {}).sort()) out.push(cacheRequirement(name, workerPool));
  for (const [name, on] of Object.entries(payload.features ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))) {
    const requirement = on === true ? featureRequirement(name, provided) : undefined;
    if (requirement) out.push(requirement);
  }
  // Private image artifacts (imageArtifactRequirement) are checked by the image store, which
  // fails the task with "Not authorized to use …" as the issue asks, not as a malformed payload.
  void image;
  return out;
}
