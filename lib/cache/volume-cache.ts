// Named volume caches (payload.cache: {name: mountPoint}). Each cache has instances: host
// directories bind-mounted into task containers (as docker-worker did; plain directories are
// what the disk budget can measure and delete without the engine). A task gets, for each cache,
// a free instance — the most recently used one, so contents persist between tasks — or a new
// one; concurrent tasks never share an instance. An instance is released after the task's
// container is removed; released instances marked for purging are deleted then.
//
// Scopes: a cache needs docker-worker:cache:<name> (or :<provisionerId>/<workerType>) in the
// task's scopes, directly or through a role (the run's ScopeSet expands them once).
import type { WorkerLog } from '../log/worker-log.ts';
import { missingScopeMessage, unmetRequirements } from '../scopes/scope-requirement.ts';
import type { ScopeSet } from '../scopes/task-scopes.ts';
import { cacheRequirement } from './cache-scopes.ts';
import { CacheIndex, type CacheInstance } from './cache-index.ts';

export type { CacheInstance } from './cache-index.ts';

/** A cache as the plan lists it. */
export interface CacheRequest { name: string; mountPoint: string }

export interface AttachedCache {
  name: string;
  mountPoint: string;
  instanceId: string;
  hostPath: string;
  /** False for an instance created for this task (empty). */
  reused: boolean;
}

export interface CacheLease {
  /** `<host dir>:<mount point>` for HostConfig.Binds. */
  binds: string[];
  attached: AttachedCache[];
  /**
   * Frees the instances (call after the task's container is removed). With `purge`
   * (onExitStatus.purgeCaches matched) they are deleted. Calling it again does nothing.
   */
  release(purge: boolean): Promise<void>;
  /**
   * Gives the instances up for good, for when the task's container could not be removed (it
   * may still hold them): they are never handed out again, and are removed from the index and
   * deleted, as a purge does. Use instead of release(); calling either again does nothing.
   */
  abandon(): Promise<void>;
}

/** The task may not use a cache it asks for: exception malformed-payload. */
export class CacheScopeError extends Error {
  override name = 'CacheScopeError';
  readonly missing: string[];
  constructor(missing: string[]) {
    super(`Insufficient scopes to attach cache volumes.\n${missing.join('\n')}`);
    this.missing = missing;
  }
}

/** A cache name the worker cannot use: exception malformed-payload. */
export class CacheNameError extends Error {
  override name = 'CacheNameError';
}

export interface VolumeCachesOptions {
  /** `<stateDir>/caches` */
  dir: string;
  /** `<provisionerId>/<workerType>` */
  workerPool: string;
  log: WorkerLog;
  now?: () => number;
  /** Runs before instances are chosen for a task (the worker applies recent purge requests). */
  beforeAcquire?: () => Promise<void>;
}

export function checkCacheName(name: string): void {
  if (name === '' || name.includes('::') || name.includes('/')) {
    throw new CacheNameError(`payload.cache has a cache named ${JSON.stringify(name)}; cache names cannot be empty or contain "/" or "::"`);
  }
}

export class VolumeCaches {
  readonly dir: string;
  private readonly index: CacheIndex;
  private readonly options: VolumeCachesOptions;
  /** instance id -> taskId using it */
  private readonly inUse = new Map<string, string>();
  /** instances to delete as soon as they are free */
  private readonly doomed = new Set<string>();
  private readonly now: () => number;

  private constructor(index: CacheIndex, options: VolumeCachesOptions) {
    this.index = index;
    this.options = options;
    this.dir = options.dir;
    this.now = options.now ?? Date.now;
  }

  /** Opens the cache directory, adopting the instances an earlier process left. */
  static async open(options: VolumeCachesOptions): Promise<VolumeCaches> {
    const caches = new VolumeCaches(await CacheIndex.open(options.dir), options);
    const adopted = caches.index.list();
    if (adopted.length) options.log.info('adopted volume cache instances', { count: adopted.length, caches: [...new Set(adopted.map((i) => i.name))] });
    return caches;
  }

  /** The scope requirements of `caches` the task's scopes (or roles) do not meet, as messages. */
  async missingScopes(caches: readonly CacheRequest[], scopes: ScopeSet): Promise<string[]> {
    const unmet = await unmetRequirements(scopes, caches.map((c) => cacheRequirement(c.name, this.options.workerPool)));
    return unmet.map((r) => `${missingScopeMessage(r)} (directly or through a role)`);
  }

  /**
   * Attaches an instance of each cache to `taskId`. Throws CacheNameError or CacheScopeError
   * (having created nothing) when the task may not have them.
   */
  async acquire(taskId: string, caches: readonly CacheRequest[], scopes: ScopeSet): Promise<CacheLease> {
    for (const c of caches) checkCacheName(c.name);
    const missing = await this.missingScopes(caches, scopes);
    if (missing.length) throw new CacheScopeError(missing);
    if (caches.length) await this.options.beforeAcquire?.();
    // From here to the end of the loop nothing awaits: concurrent acquisitions cannot pick the same instance.
    const attached: AttachedCache[] = [];
    try {
      for (const c of caches) {
        let instance = this.freeInstances(c.name)[0];
        const reused = instance !== undefined;
        instance ??= this.index.create(c.name, this.now());
        this.inUse.set(instance.id, taskId);
        this.index.touch(instance.id, this.now());
        attached.push({ name: c.name, mountPoint: c.mountPoint, instanceId: instance.id, hostPath: instance.path, reused });
      }
    } catch (err) {
      for (const a of attached) this.inUse.delete(a.instanceId);
      throw new Error(`Could not create a volume cache instance: ${(err as Error).message}`, { cause: err });
    }
    this.options.log.debug('volume caches attached', { taskId, caches: attached.map((a) => ({ name: a.name, instanceId: a.instanceId, reused: a.reused })) });
    let released = false;
    return {
      binds: attached.map((a) => `${a.hostPath}:${a.mountPoint}`),
      attached,
      release: async (purge: boolean) => {
        if (released) return;
        released = true;
        for (const a of attached) {
          this.inUse.delete(a.instanceId);
          this.index.touch(a.instanceId, this.now());
          if (purge) this.doomed.add(a.instanceId);
        }
        if (purge) this.options.log.info('purging volume caches of task', { taskId, caches: attached.map((a) => a.name) });
        await this.removeDoomed();
      },
      abandon: async () => {
        if (released) return;
        released = true;
        // Doomed before the instances are free, so no acquisition can pick one in between.
        for (const a of attached) this.doomed.add(a.instanceId);
        for (const a of attached) this.inUse.delete(a.instanceId);
        this.options.log.warn('abandoning volume cache instances of task', { taskId, caches: attached.map((a) => ({ name: a.name, instanceId: a.instanceId })) });
        await this.removeDoomed();
      },
    };
  }

  /** Free instances of one cache, most recently used first (not those marked for purging). */
  private freeInstances(name: string): CacheInstance[] {
    return this.index.list()
      .filter((i) => i.name === name && !this.inUse.has(i.id) && !this.doomed.has(i.id))
      .sort((a, b) => b.lastUsed - a.lastUsed);
  }

  /**
   * A purge request: instances of `name` created before `before` are deleted, at once when
   * free, else when their task releases them. Resolves when the free ones are gone.
   */
  async purge(name: string, before: Date): Promise<number> {
    let count = 0;
    for (const i of this.index.list()) {
      if (i.name !== name || i.created >= before.getTime()) continue;
      this.doomed.add(i.id);
      count += 1;
    }
    if (count) this.options.log.info('purging volume cache', { cacheName: name, before: before.toISOString(), instances: count });
    await this.removeDoomed();
    return count;
  }

  /** Every instance, with whether a task uses it. */
  list(): (CacheInstance & { inUseBy?: string })[] {
    return this.index.list().map((i) => ({ ...i, inUseBy: this.inUse.get(i.id) }));
  }

  /** Instances no task uses, least recently used first: what the disk budget may evict. */
  unused(): CacheInstance[] {
    return this.index.list().filter((i) => !this.inUse.has(i.id)).sort((a, b) => a.lastUsed - b.lastUsed);
  }

  /** Deletes an instance if no task uses it; returns whether it did. */
  async evict(instanceId: string): Promise<boolean> {
    const instance = this.index.get(instanceId);
    if (!instance || this.inUse.has(instanceId)) return false;
    this.doomed.delete(instanceId);
    await this.index.remove(instanceId);
    this.options.log.info('removed volume cache instance', { cacheName: instance.name, instanceId, lastUsed: new Date(instance.lastUsed).toISOString() });
    return true;
  }

  private async removeDoomed(): Promise<void> {
    for (const id of [...this.doomed]) {
      if (this.inUse.has(id)) continue;
      this.doomed.delete(id);
      const instance = this.index.get(id);
      if (!instance) continue;
      try {
        await this.index.remove(id);
        this.options.log.info('removed volume cache instance', { cacheName: instance.name, instanceId: id, reason: 'purge' });
      } catch (err) {
        this.options.log.warn('could not remove volume cache instance', { cacheName: instance.name, instanceId: id, error: (err as Error).message });
      }
    }
  }
}
