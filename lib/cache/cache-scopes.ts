// The scope a volume cache needs: docker-worker:cache:<name>, or narrowed to the worker pool
// (docker-worker:cache:<name>:<provisionerId>/<workerType>).
import { payloadField } from '../payload/field-name.ts';
import { poolScoped, type ScopeRequirement } from '../scopes/scope-requirement.ts';

export function cacheRequirement(cacheName: string, workerPool: string): ScopeRequirement {
  return { field: payloadField('cache', cacheName), anyOf: poolScoped(`docker-worker:cache:${cacheName}`, workerPool), summary: 'Insufficient scopes to attach cache volumes.' };
}
