// The docker-worker scopes a task needs for what its payload asks, checked against task.scopes
// (or their expansion) with taskcluster-lib-scopes. Pure: no network, no configuration.
//
//   privileged       docker-worker:capability:privileged[:<provisionerId>/<workerType>]
//   disableSeccomp   docker-worker:capability:disableSeccomp[:<provisionerId>/<workerType>]
//   device <d>       docker-worker:capability:device:<d>[:<provisionerId>/<workerType>]
//   cache <name>     docker-worker:cache:<name>[:<provisionerId>/<workerType>]
//   feature <f>      docker-worker:feature:<f>   (allowPtrace, balrogVPNProxy, balrogStageVPNProxy)
//   private image    docker-worker:image:<name:tag>   (registry images pulled with worker credentials)
//   image artifact   queue:get-artifact:<path>        (task-image / indexed-image not under public/)
import scopeLib from 'taskcluster-lib-scopes';
import { featureInfo } from './feature-catalog.ts';
import { payloadField } from './schema-errors.ts';
import type { DeviceName, ImageRef, Payload } from './types.ts';
import { DEVICE_NAMES } from './types.ts';

/** A payload field and the scopes it needs: any one of `anyOf`. */
export interface ScopeRequirement {
  field: string;
  anyOf: string[];
  /** docker-worker's own first sentence for this refusal, which task owners may grep for. */
  summary?: string;
}

const poolScoped = (scope: string, workerPool: string): ScopeRequirement['anyOf'] => [scope, `${scope}:${workerPool}`];

export function privilegedRequirement(workerPool: string): ScopeRequirement {
  return { field: 'payload.capabilities.privileged', anyOf: poolScoped('docker-worker:capability:privileged', workerPool), summary: 'Insufficient scopes to run task in privileged mode.' };
}

export function disableSeccompRequirement(workerPool: string): ScopeRequirement {
  return { field: 'payload.capabilities.disableSeccomp', anyOf: poolScoped('docker-worker:capability:disableSeccomp', workerPool) };
}

export function deviceRequirement(device: DeviceName, workerPool: string): ScopeRequirement {
  return { field: `payload.capabilities.devices.${device}`, anyOf: poolScoped(`docker-worker:capability:device:${device}`, workerPool), summary: 'Insufficient scopes to attach devices to task container.' };
}

export function cacheRequirement(cacheName: string, workerPool: string): ScopeRequirement {
  return { field: payloadField('cache', cacheName), anyOf: poolScoped(`docker-worker:cache:${cacheName}`, workerPool), summary: 'Insufficient scopes to attach cache volumes.' };
}

export function featureRequirement(feature: string): ScopeRequirement | undefined {
  const scope = featureInfo(feature)?.requiredScope;
  return scope ? { field: `payload.features.${feature}`, anyOf: [scope] } : undefined;
}

/** For a registry image the worker pulls with its own registry credentials. */
export function privateImageRequirement(imageName: string): ScopeRequirement {
  return { field: 'payload.image', anyOf: [`docker-worker:image:${imageName}`] };
}

/** Image tarballs outside `public/` are private artifacts: the task must be allowed to read them. */
export function imageArtifactRequirement(image: ImageRef): ScopeRequirement | undefined {
  if (image.kind === 'registry' || /^\/?public\//.test(image.path)) return undefined;
  return { field: 'payload.image.path', anyOf: [`queue:get-artifact:${image.path}`] };
}

/**
 * Every scope requirement of a payload, in a fixed order: capabilities, devices, caches,
 * features. Registry credentials are not known here: see privateImageRequirement.
 */
export function payloadScopeRequirements(payload: Payload, image: ImageRef, workerPool: string): ScopeRequirement[] {
  const out: ScopeRequirement[] = [];
  const caps = payload.capabilities ?? {};
  if (caps.privileged === true) out.push(privilegedRequirement(workerPool));
  if (caps.disableSeccomp === true) out.push(disableSeccompRequirement(workerPool));
  for (const device of DEVICE_NAMES) {
    if (caps.devices?.[device] === true) out.push(deviceRequirement(device, workerPool));
  }
  for (const name of Object.keys(payload.cache ?? {}).sort()) out.push(cacheRequirement(name, workerPool));
  for (const [name, on] of Object.entries(payload.features ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))) {
    const requirement = on === true ? featureRequirement(name) : undefined;
    if (requirement) out.push(requirement);
  }
  // Private image artifacts (imageArtifactRequirement) are checked by the image store, which
  // fails the task with "Not authorized to use …" as the issue asks, not as a malformed payload.
  void image;
  return out;
}

export function isSatisfied(scopes: readonly string[], requirement: ScopeRequirement): boolean {
  return scopeLib.satisfiesExpression([...scopes], { AnyOf: requirement.anyOf });
}

/** "payload.features.allowPtrace needs the scope docker-worker:feature:allowPtrace in task.scopes" */
export function missingScopeMessage(requirement: ScopeRequirement): string {
  const [first, ...others] = requirement.anyOf;
  const alternatives = others.length ? ` (or ${others.join(' or ')})` : '';
  const summary = requirement.summary ? `${requirement.summary} ` : '';
  return `${summary}${requirement.field} needs the scope ${first}${alternatives} in task.scopes`;
}

/** One message per requirement the scopes do not satisfy; empty when all are satisfied. */
export function missingScopes(scopes: readonly string[], requirements: readonly ScopeRequirement[]): string[] {
  return requirements.filter((r) => !isSatisfied(scopes, r)).map(missingScopeMessage);
}
