// The one owner of images in a worker process (one ImageStore per worker):
//  - registry images: lib/docker/registry-image.ts, with the worker's registry credentials only
//    for tasks holding docker-worker:image:<name>;
//  - task-image / indexed-image: the artifact is found (artifact-image.ts), streamed into the
//    engine (artifact-load.ts) under a deterministic name, and remembered by identity and by
//    content digest (loaded-images.ts), so the next task using it — or an artifact of another
//    task with the same bytes, when the object service tells the digest before the download —
//    neither downloads nor loads again;
//  - single flight: concurrent tasks asking for the same image share one pull or download; a
//    retry of a shared download uses the access (credentials) of a task still waiting for it;
//  - leases: acquire/release per image id, so the garbage collector can ask inUse() and
//    lastUsed() before removing an image.
//
// Acquisition and eviction never interleave. A flight checks that an image is present and
// pins it for its callers under that image's lock (keyed-lock.ts), and the disk budget removes
// an image under the same lock through exclusive(), after asking inUse(). A pin lasts until
// the last caller of the flight has taken its own lease (or given up), so an image is in use
// from the moment a flight finds it until the task releases it. A registry flight pins the
// copy already on the host before it pulls, so a re-pull (or the fallback to the local copy)
// never finds it removed underneath.
//
// Worker-log events: `image download started`, `image loaded` (digest, bytes, ms),
// `waiting for shared image` (debug: a task joined a pull or download under way) and
// `image reused` (digest; `shared` when it joined a download under way, `sameContentAs` when
// an artifact of another task had the same bytes).
import path from 'node:path';
import type { Engine } from '../docker/engine.ts';
import { ImageNameError } from '../docker/image-name.ts';
import { ensureRegistryImage, ImageError } from '../docker/registry-image.ts';
import { registryCredentialsFor, imageScope, type RegistryCredentialsConfig } from '../docker/registry-credentials.ts';
import type { WorkerLog } from '../log/worker-log.ts';
import type { Credentials } from '../queue/taskcluster.ts';
import type { ScopeSet } from '../scopes/task-scopes.ts';
import type { ImageRef } from './image-ref.ts';
import { resolveArtifact, describeArtifact, type ArtifactAccess, type ArtifactImageRef, type ResolvedArtifact } from './artifact-image.ts';
import { loadArtifactImage } from './artifact-load.ts';
import { withRetries } from '../retry/with-retries.ts';
import { ImageFailure, type ImageFailureKind } from './errors.ts';
import { unreachableEngine } from '../docker/engine-error.ts';
import { KeyedLock } from './keyed-lock.ts';
import { LoadedImages, type LoadedImageRecord } from './loaded-images.ts';
import { digestHex, identityKey, localImageName } from './local-name.ts';
import { SingleFlight, type FlightContext } from './single-flight.ts';

/** `sha256:<64 hex>`: the digest of an image artifact's bytes (chain of trust's imageArtifactHash). */
export type ArtifactHash = `sha256:${string}`;

export interface ImageStoreOptions {
  engine: Engine;
  log: WorkerLog;
  /** The worker's state directory; the memory of loaded images lives in <stateDir>/images. */
  stateDir: string;
  rootUrl: string;
  registries: RegistryCredentialsConfig;
  pullRetries: number;
  pullBaseDelayMs: number;
  /** Retries of an artifact download on network errors and 5xx (default 5). */
  downloadRetries?: number;
  /** Delay before the first download retry, doubled each time (default: pullBaseDelayMs). */
  downloadBaseDelayMs?: number;
  /** Least time between two download progress lines (default 5000 ms). */
  progressIntervalMs?: number;
  /** The clock for last-use times (epoch ms; default Date.now). */
  now?: () => number;
  /**
   * How many bytes an image artifact may expand to, asked before each load (the worker: the
   * room the disk budget can give, capped by `image.maxExpandedBytes`). Default: no bound.
   */
  maxExpandedBytes?: () => Promise<number>;
}

/** Lines for the task log (TaskLog fits). */
export interface TaskLines { info(line: string): void; warn(line: string): void }

export interface EnsureContext {
  /** The task asking, for worker-log events. */
  taskId?: string;
  /**
   * The task's scopes (private artifacts and registry credentials depend on them); roles are
   * looked through only when the raw scopes fall short.
   */
  scopes: ScopeSet;
  /** The run's current temporary credentials (they change after each reclaim). */
  credentials: () => Credentials;
  taskLog: TaskLines;
  signal: AbortSignal;
}

export interface EnsuredImage {
  /** Local image id (sha256:...) to run. */
  imageId: string;
  /** The name it is known by locally. */
  name: string;
  /** For the task log: a registry digest or the artifact it came from. */
  description: string;
  /** sha256 of the image artifact's bytes, for chain of trust (artifact images only). */
  artifactHash?: ArtifactHash;
  /** Ends this task's use of the image (for the garbage collector); idempotent. */
  release(): void;
}

type Ready = Omit<EnsuredImage, 'release'>;

export class ImageStore {
  private readonly options: ImageStoreOptions;
  private readonly memory: LoadedImages;
  private readonly flights = new SingleFlight<Ready>();
  private readonly leases = new Map<string, number>();
  private readonly now: () => number;
  /** Per image id: presence checks with pins, and removals by the disk budget. */
  private readonly locks = new KeyedLock();
  /** Per flight key: callers still waiting (or about to take their lease). */
  private readonly callers = new Map<string, number>();
  /** Per flight key: image ids its flight found present and keeps for its callers. */
  private readonly pins = new Map<string, Set<string>>();
  /** Per flight key: the artifact access of each caller still waiting, latest last. */
  private readonly accesses = new Map<string, ArtifactAccess[]>();

  constructor(options: ImageStoreOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
    this.memory = LoadedImages.open(path.join(options.stateDir, 'images'));
  }

  /** Makes the image ready for a task and takes a lease on it; throws ImageFailure for the task log. */
  async ensure(ref: ImageRef, ctx: EnsureContext): Promise<EnsuredImage> {
    return ref.kind === 'registry' ? this.ensureRegistry(ref.name, ctx) : this.ensureArtifact(ref, ctx);
  }

  /** Takes a lease on an image; the returned function gives it back (once). */
  acquire(imageId: string): () => void {
    this.leases.set(imageId, (this.leases.get(imageId) ?? 0) + 1);
    this.memory.touch(imageId, this.now());
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.release(imageId);
    };
  }

  /** Gives a lease back; the image's last use is now (expiry counts from the end of use). */
  release(imageId: string): void {
    const n = (this.leases.get(imageId) ?? 0) - 1;
    if (n > 0) this.leases.set(imageId, n);
    else this.leases.delete(imageId);
    this.memory.touch(imageId, this.now());
  }

  /** Whether a task holds the image, or a flight found it and is handing it to tasks. */
  inUse(imageId: string): boolean {
    if ((this.leases.get(imageId) ?? 0) > 0) return true;
    for (const ids of this.pins.values()) if (ids.has(imageId)) return true;
    return false;
  }

  /**
   * Runs `fn` (the garbage collector's removal of `imageId`) under the image's lock: no flight
   * can find the image present and pin it meanwhile. `fn` should ask inUse() first.
   */
  exclusive<T>(imageId: string, fn: () => Promise<T>): Promise<T> {
    return this.locks.run(imageId, fn);
  }

  /** When a task was last given the image or gave it back (epoch ms), if this worker ever gave it out. */
  lastUsed(imageId: string): number | undefined {
    return this.memory.lastUsed(imageId);
  }

  /** The image artifacts this worker remembers loading. */
  loadedArtifacts(): LoadedImageRecord[] {
    return this.memory.records();
  }

  /** Registry images this worker pulled onto the host (never ones that were already there). */
  pulledImages(): { imageId: string; name: string }[] {
    return this.memory.pulledImages();
  }

  /** For the garbage collector after it removed an image. */
  forget(imageId: string): void {
    this.memory.forgetImage(imageId);
  }

  // --- flights, pins and leases ---------------------------------------------------------------

  /**
   * Joins (or starts) the flight for `key` and leases its image for the caller. The caller
   * counts for `key` from before the flight starts until its lease is taken, so the flight's
   * pins hold until then.
   */
  private async join(key: string, work: (flight: FlightContext) => Promise<Ready>, ctx: EnsureContext, access?: ArtifactAccess): Promise<{ ready: Ready; shared: boolean; release: () => void }> {
    this.callers.set(key, (this.callers.get(key) ?? 0) + 1);
    if (access) this.accesses.set(key, [...(this.accesses.get(key) ?? []), access]);
    try {
      const { value, shared } = await this.flights.run(key, work, { signal: ctx.signal, emit: (line) => ctx.taskLog.info(line) });
      return { ready: value, shared, release: this.acquire(value.imageId) };
    } finally {
      const left = (this.callers.get(key) ?? 1) - 1;
      if (access) {
        const others = (this.accesses.get(key) ?? []).filter((a) => a !== access);
        if (others.length) this.accesses.set(key, others); else this.accesses.delete(key);
      }
      if (left > 0) {
        this.callers.set(key, left);
      } else {
        this.callers.delete(key);
        this.pins.delete(key);
      }
    }
  }

  /**
   * Under the image's lock: whether `imageId` is present (as `name`, when given), and if so
   * pins it for the callers of `key`. False when it is gone (or `name` now means another image).
   */
  private pin(key: string, imageId: string, name?: string): Promise<boolean> {
    return this.locks.run(imageId, async () => {
      const present = await this.options.engine.inspectImage(name ?? imageId);
      if (present?.Id !== imageId) return false;
      if (this.callers.has(key)) this.pins.set(key, (this.pins.get(key) ?? new Set()).add(imageId));
      return true;
    });
  }

  /** Whether the scopes (or, when they fall short, the roles they assume) grant `scope`. */
  private async scopesAllow(ctx: EnsureContext, scope: string): Promise<boolean> {
    try {
      return await ctx.scopes.allows([scope]);
    } catch (err) {
      throw new ImageFailure('transient', `Could not expand the task's scopes: ${(err as Error).message}`, err);
    }
  }

  // --- registry images ----------------------------------------------------------------------

  private async ensureRegistry(name: string, ctx: EnsureContext): Promise<EnsuredImage> {
    const { options } = this;
    let available: ReturnType<typeof registryCredentialsFor>;
    try {
      available = registryCredentialsFor(name, options.registries);
    } catch (err) {
      if (err instanceof ImageNameError) throw new ImageFailure('invalid', err.message, err);
      throw err;
    }
    const allowed = available !== undefined && await this.scopesAllow(ctx, imageScope(name));
    const key = `registry:${name}:${allowed ? 'credentials' : 'anonymous'}`;
    if (this.flights.has(key)) {
      ctx.taskLog.info(`Waiting for image ${name}, which another task is pulling`);
      options.log.debug('waiting for shared image', { taskId: ctx.taskId, image: name });
    }
    const work = async (flight: FlightContext): Promise<Ready> => {
      try {
        // The copy on the host (if any) is kept for the flight: the budget must not remove it
        // while it is pulled again or fallen back to.
        // (A name the engine cannot even look up is ensureRegistryImage's to explain.)
        // (An engine that does not answer is no such thing: it ends the run at once.)
        let before = await options.engine.inspectImage(name).catch((err: unknown) => { if (unreachableEngine(err)) throw err; return undefined; });
        if (before && !(await this.pin(key, before.Id, name))) before = undefined;
        for (let attempt = 1; ; attempt++) {
          const ensured = await ensureRegistryImage(options.engine, name, {
            credentials: allowed ? available : undefined, retries: options.pullRetries, baseDelayMs: options.pullBaseDelayMs,
            onProgress: flight.emit, signal: flight.signal,
          });
          if (await this.pin(key, ensured.imageId)) {
            // Brought here by this pull: nothing was there, or the tag moved to another image.
            if (ensured.source === 'registry' && before?.Id !== ensured.imageId) this.memory.recordPull(ensured.imageId, ensured.image.reference);
            return { imageId: ensured.imageId, name, description: ensured.repoDigest ?? name };
          }
          if (attempt >= 2) throw new ImageFailure('transient', `Image ${name} was removed from the host while it was being made ready; try the task again.`);
        }
      } catch (err) {
        if (!(err instanceof ImageError)) throw err;
        const hint = available && !allowed && err.kind === 'auth'
          ? ` This worker has credentials for ${available.registry}, but the task lacks the scope docker-worker:image:${name} needed to use them.`
          : '';
        throw new ImageFailure(registryFailureKind(err.kind), err.message + hint, err);
      }
    };
    const { ready, release } = await this.join(key, work, ctx);
    return { ...ready, release };
  }

  // --- image artifacts ------------------------------------------------------------------------

  private access(ctx: EnsureContext): ArtifactAccess {
    return { rootUrl: this.options.rootUrl, scopes: ctx.scopes, credentials: ctx.credentials };
  }

  /** The access of a caller still waiting for `key` (the latest to join), else `fallback`. */
  private waitingAccess(key: string, fallback: ArtifactAccess): ArtifactAccess {
    return this.accesses.get(key)?.at(-1) ?? fallback;
  }

  private async ensureArtifact(ref: ArtifactImageRef, ctx: EnsureContext): Promise<EnsuredImage> {
    const access = this.access(ctx);
    const resolved = await resolveArtifact(ref, access);
    ctx.signal.throwIfAborted();
    const key = `artifact:${identityKey(resolved)}`;
    const what = describeArtifact(resolved);
    if (this.flights.has(key)) {
      ctx.taskLog.info(`Waiting for image artifact ${what}, which another task is downloading`);
      this.options.log.debug('waiting for shared image', { taskId: ctx.taskId, image: what, sourceTaskId: resolved.taskId, path: resolved.path });
    }
    const { ready, shared, release } = await this.join(key, (flight) => this.loadOrReuse(key, ref, resolved, access, flight, ctx.taskId), ctx, access);
    if (shared) {
      this.options.log.info('image reused', { taskId: ctx.taskId, digest: ready.artifactHash, name: ready.name, imageId: ready.imageId, shared: true });
    }
    return { ...ready, release };
  }

  /**
   * A remembered image with this artifact's content that is still there, pinned for `key`:
   * the artifact's own record when its content is known unchanged, else (when the object
   * service told the digest) one of another artifact with the same bytes.
   */
  private async remembered(key: string, resolved: ResolvedArtifact): Promise<{ record: LoadedImageRecord; sameContentAs?: LoadedImageRecord } | undefined> {
    const own = this.memory.get(identityKey(resolved));
    if (own) {
      const sameContent = resolved.sha256 !== undefined ? digestHex(own.digest) === resolved.sha256 : resolved.runResolved;
      if (sameContent) {
        if (await this.pin(key, own.imageId, own.name)) return { record: own };
        this.memory.delete(own.key);
      }
    }
    if (resolved.sha256 === undefined) return undefined;
    for (const other of this.memory.withDigest(`sha256:${resolved.sha256}`)) {
      if (other.key === own?.key) continue;
      if (await this.pin(key, other.imageId, other.name)) return { record: other, sameContentAs: other };
      this.memory.delete(other.key);
    }
    return undefined;
  }

  private async loadOrReuse(key: string, ref: ArtifactImageRef, first: ResolvedArtifact, firstAccess: ArtifactAccess, flight: FlightContext, taskId: string | undefined): Promise<Ready> {
    const { options } = this;
    const { log } = options;
    const what = describeArtifact(first);
    const found = await this.remembered(key, first);
    if (found && !found.sameContentAs) {
      const { record } = found;
      log.info('image reused', { taskId, digest: record.digest, name: record.name, imageId: record.imageId, sourceTaskId: record.taskId, path: record.path });
      flight.emit(`Using image ${record.name} (${record.digest}), loaded earlier from the artifact ${what}`);
      return { imageId: record.imageId, name: record.name, description: `${what}, ${record.digest}`, artifactHash: record.digest as ArtifactHash };
    }
    if (found?.sameContentAs) {
      // The same bytes came before as another artifact: give the image this artifact's own name too.
      const other = found.sameContentAs;
      const name = localImageName(first, other.digest);
      await options.engine.tagImage(other.imageId, name.repository, name.tag);
      this.memory.put({
        key: identityKey(first), taskId: first.taskId, runId: first.runId, path: first.path, digest: other.digest,
        name: name.name, imageId: other.imageId, bytes: other.bytes, loadedAt: new Date(this.now()).toISOString(),
      });
      log.info('image reused', {
        taskId, digest: other.digest, name: name.name, imageId: other.imageId, sourceTaskId: first.taskId, path: first.path, sameContentAs: other.key,
      });
      flight.emit(`Using image ${name.name} (${other.digest}): the artifact ${what} has the same content as ${describeArtifact(other)}, loaded earlier`);
      return { imageId: other.imageId, name: name.name, description: `${what}, ${other.digest}`, artifactHash: other.digest as ArtifactHash };
    }

    const retries = Math.max(0, options.downloadRetries ?? 5);
    const baseDelayMs = Math.max(0, options.downloadBaseDelayMs ?? options.pullBaseDelayMs);
    let current = first;
    log.info('image download started', { taskId, sourceTaskId: first.taskId, runId: first.runId, path: first.path, storageType: first.storageType, namespace: first.namespace });
    let attempt = 0;
    const load = async (n: number): Promise<Ready> => {
      attempt = n;
      try {
        const maxExpandedBytes = await options.maxExpandedBytes?.();
        const loaded = await loadArtifactImage(options.engine, current, { emit: flight.emit, signal: flight.signal, progressIntervalMs: options.progressIntervalMs, maxExpandedBytes });
        if (!(await this.pin(key, loaded.imageId, loaded.name))) {
          throw new ImageFailure('transient', `The image loaded from the artifact ${what} was removed from the host before a task could use it.`);
        }
        this.memory.put({
          key: identityKey(current), taskId: current.taskId, runId: current.runId, path: current.path, digest: loaded.digest,
          name: loaded.name, imageId: loaded.imageId, bytes: loaded.bytes, loadedAt: new Date(this.now()).toISOString(),
        });
        log.info('image loaded', {
          taskId, sourceTaskId: current.taskId, runId: current.runId, path: current.path, digest: loaded.digest, bytes: loaded.bytes,
          ms: loaded.ms, name: loaded.name, imageId: loaded.imageId, format: loaded.format,
        });
        flight.emit(`Loaded image ${loaded.name} (${loaded.imageId.slice(0, 19)}) from the artifact ${what}`);
        return { imageId: loaded.imageId, name: loaded.name, description: `${what}, ${loaded.digest}`, artifactHash: loaded.digest as ArtifactHash };
      } catch (err) {
        flight.signal.throwIfAborted();
        const failure = err instanceof ImageFailure ? err : new ImageFailure('engine', `Could not load the image artifact ${what}: ${(err as Error).message}`, err);
        log.warn('image load failed', { taskId, sourceTaskId: current.taskId, path: current.path, attempt: n, kind: failure.kind, error: failure.message });
        throw failure;
      }
    };
    try {
      return await withRetries(load, {
        retries, baseDelayMs, jitter: false, signal: flight.signal,
        shouldRetry: (err) => (err as ImageFailure).retryable,
        onRetry: (err, n, delayMs) => flight.emit(`${err.message} Retrying in ${(delayMs / 1000).toFixed(1)} s (attempt ${n + 1} of ${retries + 1}).`),
        // The task that started the download may be gone by now (its credentials with it).
        beforeRetry: async () => { current = await resolveArtifact(ref, this.waitingAccess(key, firstAccess)); },
      });
    } catch (err) {
      if (err instanceof ImageFailure && err.retryable && attempt > retries) {
        throw new ImageFailure('transient', `${err.message} Gave up after ${attempt} attempt${attempt === 1 ? '' : 's'}.`, err);
      }
      throw err;
    }
  }
}

function registryFailureKind(kind: ImageError['kind']): ImageFailureKind {
  switch (kind) {
    case 'auth': return 'unauthorized';
    case 'not-found': return 'not-found';
    case 'transient': return 'transient';
    case 'engine': return 'engine';
    default: return 'invalid';
  }
}
