// The one owner of images in a worker process (one ImageStore per worker):
//  - registry images: lib/docker/registry-image.ts, with the worker's registry credentials only
//    for tasks holding docker-worker:image:<name>;
//  - task-image / indexed-image: the artifact is found (artifact-image.ts), streamed into the
//    engine (artifact-load.ts) under a deterministic name, and remembered by identity and
//    digest (loaded-images.ts) so the next task using it neither downloads nor loads again;
//  - single flight: concurrent tasks asking for the same image share one pull or download;
//  - leases: acquire/release per image id, so the garbage collector can ask inUse() and
//    lastUsed() before removing an image.
// Worker-log events: `image download started`, `image loaded` (digest, bytes, ms) and
// `image reused` (digest; `shared` when it joined a download under way).
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Engine } from '../docker/engine.ts';
import { ensureRegistryImage, ImageError } from '../docker/registry-image.ts';
import { registryCredentialsFor, mayUseCredentials, type RegistryCredentialsConfig } from '../docker/registry-credentials.ts';
import type { WorkerLog } from '../log/worker-log.ts';
import type { Credentials } from '../queue/taskcluster.ts';
import type { ImageRef } from '../task/types.ts';
import { resolveArtifact, describeArtifact, type ArtifactAccess, type ArtifactImageRef, type ResolvedArtifact } from './artifact-image.ts';
import { loadArtifactImage } from './artifact-load.ts';
import { ImageFailure, type ImageFailureKind } from './errors.ts';
import { LoadedImages, type LoadedImageRecord } from './loaded-images.ts';
import { digestHex, identityKey } from './local-name.ts';
import { SingleFlight, type FlightContext } from './single-flight.ts';

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
}

/** Lines for the task log (TaskLog fits). */
export interface TaskLines { info(line: string): void; warn(line: string): void }

export interface EnsureContext {
  /** The task asking, for worker-log events. */
  taskId?: string;
  /** The task's scopes (private artifacts and registry credentials depend on them). */
  scopes: readonly string[];
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
  /** `sha256:<hex>` of the image artifact, for chain of trust (artifact images only). */
  artifactHash?: string;
  /** Ends this task's use of the image (for the garbage collector); idempotent. */
  release(): void;
}

type Ready = Omit<EnsuredImage, 'release'>;

export class ImageStore {
  private readonly options: ImageStoreOptions;
  private readonly memory: LoadedImages;
  private readonly flights = new SingleFlight<Ready>();
  private readonly leases = new Map<string, number>();

  constructor(options: ImageStoreOptions) {
    this.options = options;
    this.memory = LoadedImages.open(path.join(options.stateDir, 'images'));
  }

  /** Makes the image ready for a task and takes a lease on it; throws ImageFailure for the task log. */
  async ensure(ref: ImageRef, ctx: EnsureContext): Promise<EnsuredImage> {
    const ready = ref.kind === 'registry' ? await this.ensureRegistry(ref.name, ctx) : await this.ensureArtifact(ref, ctx);
    this.memory.touch(ready.imageId);
    const release = this.acquire(ready.imageId);
    return { ...ready, release };
  }

  /** Takes a lease on an image; the returned function gives it back (once). */
  acquire(imageId: string): () => void {
    this.leases.set(imageId, (this.leases.get(imageId) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.release(imageId);
    };
  }

  release(imageId: string): void {
    const n = (this.leases.get(imageId) ?? 0) - 1;
    if (n > 0) this.leases.set(imageId, n);
    else this.leases.delete(imageId);
  }

  /** Whether a task holds the image, or is being given it. */
  inUse(imageId: string): boolean {
    return (this.leases.get(imageId) ?? 0) > 0;
  }

  /** When a task was last given the image (epoch ms), if this worker ever gave it out. */
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

  // --- registry images ----------------------------------------------------------------------

  private async ensureRegistry(name: string, ctx: EnsureContext): Promise<Ready> {
    const { options } = this;
    const available = registryCredentialsFor(name, options.registries);
    const allowed = available !== undefined && mayUseCredentials([...ctx.scopes], name);
    const key = `registry:${name}:${allowed ? 'credentials' : 'anonymous'}`;
    if (this.flights.has(key)) ctx.taskLog.info(`Waiting for image ${name}, which another task is pulling`);
    const { value } = await this.flights.run(key, async (flight) => {
      try {
        const existed = await options.engine.imageExists(name);
        const ensured = await ensureRegistryImage(options.engine, name, {
          credentials: allowed ? available : undefined, retries: options.pullRetries, baseDelayMs: options.pullBaseDelayMs,
          onProgress: flight.emit, signal: flight.signal,
        });
        if (!existed && ensured.source === 'registry') this.memory.recordPull(ensured.imageId, ensured.image.reference);
        return { imageId: ensured.imageId, name, description: ensured.repoDigest ?? name };
      } catch (err) {
        if (!(err instanceof ImageError)) throw err;
        const hint = available && !allowed && err.kind === 'auth'
          ? ` This worker has credentials for ${available.registry}, but the task lacks the scope docker-worker:image:${name} needed to use them.`
          : '';
        throw new ImageFailure(registryFailureKind(err.kind), err.message + hint, err);
      }
    }, { signal: ctx.signal, emit: (line) => ctx.taskLog.info(line) });
    return value;
  }

  // --- image artifacts ------------------------------------------------------------------------

  private access(ctx: EnsureContext): ArtifactAccess {
    return { rootUrl: this.options.rootUrl, scopes: ctx.scopes, credentials: ctx.credentials };
  }

  private async ensureArtifact(ref: ArtifactImageRef, ctx: EnsureContext): Promise<Ready> {
    const access = this.access(ctx);
    const resolved = await resolveArtifact(ref, access);
    ctx.signal.throwIfAborted();
    const key = `artifact:${identityKey(resolved)}`;
    const what = describeArtifact(resolved);
    if (this.flights.has(key)) ctx.taskLog.info(`Waiting for image artifact ${what}, which another task is downloading`);
    const { value, shared } = await this.flights.run(key, (flight) => this.loadOrReuse(ref, resolved, access, flight, ctx.taskId),
      { signal: ctx.signal, emit: (line) => ctx.taskLog.info(line) });
    if (shared) {
      this.options.log.info('image reused', { taskId: ctx.taskId, digest: value.artifactHash, name: value.name, imageId: value.imageId, shared: true });
    }
    return value;
  }

  /** The remembered image for this artifact, if its content is known unchanged and it is still there. */
  private async remembered(resolved: ResolvedArtifact): Promise<LoadedImageRecord | undefined> {
    const record = this.memory.get(identityKey(resolved));
    if (!record) return undefined;
    const sameContent = resolved.sha256 !== undefined ? digestHex(record.digest) === resolved.sha256 : resolved.runResolved;
    if (!sameContent) return undefined;
    const present = await this.options.engine.inspectImage(record.name);
    if (present?.Id === record.imageId) return record;
    this.memory.delete(record.key);
    return undefined;
  }

  private async loadOrReuse(ref: ArtifactImageRef, first: ResolvedArtifact, access: ArtifactAccess, flight: FlightContext, taskId: string | undefined): Promise<Ready> {
    const { options } = this;
    const { log } = options;
    const what = describeArtifact(first);
    const record = await this.remembered(first);
    if (record) {
      log.info('image reused', { taskId, digest: record.digest, name: record.name, imageId: record.imageId, sourceTaskId: record.taskId, path: record.path });
      flight.emit(`Using image ${record.name} (${record.digest}), loaded earlier from the artifact ${what}`);
      return { imageId: record.imageId, name: record.name, description: `${what}, ${record.digest}`, artifactHash: record.digest };
    }

    const retries = Math.max(0, options.downloadRetries ?? 5);
    const baseDelayMs = Math.max(0, options.downloadBaseDelayMs ?? options.pullBaseDelayMs);
    let current = first;
    log.info('image download started', { taskId, sourceTaskId: first.taskId, runId: first.runId, path: first.path, storageType: first.storageType, namespace: first.namespace });
    for (let attempt = 1; ; attempt++) {
      try {
        const loaded = await loadArtifactImage(options.engine, current, { emit: flight.emit, signal: flight.signal, progressIntervalMs: options.progressIntervalMs });
        this.memory.put({
          key: identityKey(current), taskId: current.taskId, runId: current.runId, path: current.path, digest: loaded.digest,
          name: loaded.name, imageId: loaded.imageId, bytes: loaded.bytes, loadedAt: new Date().toISOString(),
        });
        log.info('image loaded', {
          taskId, sourceTaskId: current.taskId, runId: current.runId, path: current.path, digest: loaded.digest, bytes: loaded.bytes,
          ms: loaded.ms, name: loaded.name, imageId: loaded.imageId, format: loaded.format,
        });
        flight.emit(`Loaded image ${loaded.name} (${loaded.imageId.slice(0, 19)}) from the artifact ${what}`);
        return { imageId: loaded.imageId, name: loaded.name, description: `${what}, ${loaded.digest}`, artifactHash: loaded.digest };
      } catch (err) {
        flight.signal.throwIfAborted();
        const failure = err instanceof ImageFailure ? err : new ImageFailure('engine', `Could not load the image artifact ${what}: ${(err as Error).message}`, err);
        log.warn('image load failed', { taskId, sourceTaskId: current.taskId, path: current.path, attempt, kind: failure.kind, error: failure.message });
        if (!failure.retryable) throw failure;
        if (attempt > retries) {
          throw new ImageFailure('transient', `${failure.message} Gave up after ${attempt} attempt${attempt === 1 ? '' : 's'}.`, failure);
        }
        const delayMs = baseDelayMs * 2 ** (attempt - 1);
        flight.emit(`${failure.message} Retrying in ${(delayMs / 1000).toFixed(1)} s (attempt ${attempt + 1} of ${retries + 1}).`);
        await sleep(delayMs, undefined, { signal: flight.signal });
        current = await resolveArtifact(ref, access);
      }
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
