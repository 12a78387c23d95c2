// One disk budget for the worker: before claiming, the Docker root directory and the volume
// caches directory must each have `thresholdBytes × free slots` free. When they do not, the
// worker does not claim, tells the operator ("[alert-operator] diskspace threshold reached")
// and evicts from one ranked list until the budget is met:
//
//   1 dangling volumes the worker labelled (never one a running task owns)
//   2 images the worker pulled or loaded, least recently used first (never one in use)
//   3 volume cache instances no task uses, least recently used first
//
// Only what carries this worker's labels, and only images the worker brought, are ever
// removed. Images also expire after `imageExpirationSeconds` without use.
import { stat, statfs } from 'node:fs/promises';
import type { Engine } from '../docker/engine.ts';
import { EngineError } from '../docker/engine-error.ts';
import { LABEL_TASK_ID } from '../docker/labels.ts';
import { formatBytes } from '../log/format-bytes.ts';
import type { WorkerLog } from '../log/worker-log.ts';
import type { BroughtImage, ImageRecords } from './image-store-records.ts';
import type { VolumeCaches } from './volume-cache.ts';

export type BudgetEngine = Pick<Engine, 'listOwnedVolumes' | 'removeVolume' | 'removeImage' | 'inspectImage'>;

export interface DiskBudgetOptions {
  engine: BudgetEngine;
  workerId: string;
  caches: Pick<VolumeCaches, 'dir' | 'unused' | 'evict'>;
  images: ImageRecords;
  /** Bytes to keep free per free slot (config diskspaceThreshold). */
  thresholdBytes: number;
  /** Unused images the worker brought are removed after this long (0: never for age alone). */
  imageExpirationSeconds: number;
  /** The engine's DockerRootDir (`docker info`); undefined when not known or not local. */
  dockerRootDir: () => Promise<string | undefined>;
  /** Task ids of runs under way: their volumes are never dangling. */
  activeTaskIds?: () => Iterable<string>;
  log: WorkerLog;
  now?: () => number;
}

export interface SpaceFigure { path: string; freeBytes: number; totalBytes: number }

export interface Removal { kind: 'volume' | 'image' | 'cache'; id: string; name?: string }

export interface CollectResult { removed: Removal[]; space: SpaceFigure[]; met: boolean }

const IMAGE_EXPIRY_CHECK_MS = 60_000;


export class DiskBudget {
  private readonly options: DiskBudgetOptions;
  private readonly now: () => number;
  private lastExpiryCheck = 0;
  private collecting: Promise<CollectResult> | undefined;

  constructor(options: DiskBudgetOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
  }

  /** Free space of the Docker root and caches directories (one figure per filesystem). */
  async space(): Promise<SpaceFigure[]> {
    const paths = [this.options.caches.dir];
    try {
      const root = await this.options.dockerRootDir();
      if (root) paths.unshift(root);
    } catch (err) {
      this.options.log.debug('could not learn the Docker root directory', { error: (err as Error).message });
    }
    const figures: SpaceFigure[] = [];
    const seen = new Set<number>();
    for (const p of paths) {
      try {
        const dev = (await stat(p)).dev;
        if (seen.has(dev)) continue;
        seen.add(dev);
        const s = await statfs(p);
        figures.push({ path: p, freeBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize });
      } catch (err) {
        this.options.log.debug('could not measure free disk space', { path: p, error: (err as Error).message });
      }
    }
    return figures;
  }

  /**
   * How many bytes an image load may still use: the Docker root's free space above the
   * threshold (the engine unpacks a loaded archive there). Infinity when it cannot be measured.
   */
  async roomForImages(): Promise<number> {
    const root = await this.options.dockerRootDir().catch(() => undefined);
    const space = await this.space();
    const figure = space.find((s) => s.path === root) ?? space[0];
    return figure ? Math.max(0, figure.freeBytes - this.options.thresholdBytes) : Infinity;
  }

  /**
   * The claim gate: undefined when `freeSlots` more tasks may be claimed, else the reason
   * they may not (after evicting what it could).
   */
  async gate(freeSlots: number): Promise<string | undefined> {
    await this.expireImages();
    const needed = this.options.thresholdBytes * freeSlots;
    const space = await this.space();
    if (space.every((s) => s.freeBytes >= needed)) return undefined;
    this.options.log.warn('[alert-operator] diskspace threshold reached', {
      neededBytes: needed, thresholdBytes: this.options.thresholdBytes, freeSlots,
      space: space.map((s) => ({ path: s.path, freeBytes: s.freeBytes, totalBytes: s.totalBytes })),
    });
    const result = await this.collect(needed);
    if (result.met) {
      this.options.log.info('diskspace threshold met after garbage collection', { removed: result.removed.length, space: result.space });
      return undefined;
    }
    const short = result.space.filter((s) => s.freeBytes < needed)
      .map((s) => `${formatBytes(s.freeBytes)} free on ${s.path}`).join(', ');
    return `diskspace threshold reached: ${short}; ${formatBytes(needed)} needed (${formatBytes(this.options.thresholdBytes)} per free slot x ${freeSlots})`;
  }

  /**
   * Evicts from the ranked list until every measured filesystem has `targetFreeBytes` free
   * (everything evictable when omitted). One collection at a time; a second caller joins it.
   */
  collect(targetFreeBytes = Number.POSITIVE_INFINITY): Promise<CollectResult> {
    this.collecting ??= this.collectOnce(targetFreeBytes).finally(() => { this.collecting = undefined; });
    return this.collecting;
  }

  /** Removes unused images the worker brought that were not used for imageExpirationSeconds. */
  async expireImages(force = false): Promise<Removal[]> {
    const { imageExpirationSeconds } = this.options;
    if (imageExpirationSeconds <= 0) return [];
    if (!force && this.now() - this.lastExpiryCheck < IMAGE_EXPIRY_CHECK_MS) return [];
    this.lastExpiryCheck = this.now();
    const cutoff = this.now() - imageExpirationSeconds * 1000;
    const removed: Removal[] = [];
    for (const image of await this.options.images.list()) {
      if (image.inUse || image.lastUsed >= cutoff) continue;
      if (await this.removeImage(image, 'expired')) removed.push({ kind: 'image', id: image.imageId, name: image.names[0] });
    }
    return removed;
  }

  private async collectOnce(target: number): Promise<CollectResult> {
    const removed: Removal[] = [];
    let space = await this.space();
    const met = () => space.length > 0 && space.every((s) => s.freeBytes >= target);
    const measure = async () => { space = await this.space(); return met(); };
    if (met()) return { removed, space, met: true };

    for (const volume of await this.danglingVolumes()) {
      if (await this.removeVolume(volume)) removed.push({ kind: 'volume', id: volume });
    }
    if (removed.length && await measure()) return { removed, space, met: true };

    const images = (await this.options.images.list()).filter((i) => !i.inUse).sort((a, b) => a.lastUsed - b.lastUsed);
    for (const image of images) {
      if (!(await this.removeImage(image, 'disk space'))) continue;
      removed.push({ kind: 'image', id: image.imageId, name: image.names[0] });
      if (await measure()) return { removed, space, met: true };
    }

    for (const instance of this.options.caches.unused()) {
      if (!(await this.options.caches.evict(instance.id))) continue;
      removed.push({ kind: 'cache', id: instance.id, name: instance.name });
      if (await measure()) return { removed, space, met: true };
    }
    await measure();
    return { removed, space, met: met() };
  }

  /** Volumes labelled as this worker's that belong to no running task. */
  private async danglingVolumes(): Promise<string[]> {
    const active = new Set(this.options.activeTaskIds?.() ?? []);
    try {
      const volumes = await this.options.engine.listOwnedVolumes(this.options.workerId);
      return volumes.filter((v) => !active.has(v.labels[LABEL_TASK_ID] ?? '')).map((v) => v.name);
    } catch (err) {
      this.options.log.warn('could not list volumes', { error: (err as Error).message });
      return [];
    }
  }

  /** Docker refuses to remove a volume a container (even a stopped one) mounts: that one is kept. */
  private async removeVolume(name: string): Promise<boolean> {
    try {
      await this.options.engine.removeVolume(name);
      this.options.log.info('removed dangling volume', { volume: name });
      return true;
    } catch (err) {
      if (!(err instanceof EngineError && err.kind === 'conflict')) this.options.log.warn('could not remove volume', { volume: name, error: (err as Error).message });
      return false;
    }
  }

  /**
   * Removes the references the worker brought the image as (only those still pointing at it),
   * then the image itself if nothing else names it. An image another program also tagged keeps
   * that tag and stays. A container using the image (even a stopped one) keeps it. All of it
   * under the image store's lock for the image: a task acquiring the image meanwhile either
   * pinned it first (and it is kept) or waits and finds it gone (and loads it again).
   */
  private removeImage(image: BroughtImage, reason: string): Promise<boolean> {
    return this.options.images.exclusive(image.imageId, () => this.removeImageNow(image, reason));
  }

  private async removeImageNow(image: BroughtImage, reason: string): Promise<boolean> {
    const { engine, images, log } = this.options;
    if (images.inUse(image.imageId)) {
      log.debug('image kept: a task uses it', { imageId: image.imageId, names: image.names, reason });
      return false;
    }
    try {
      for (const name of image.names) {
        if (images.inUse(image.imageId)) return false;
        const info = await engine.inspectImage(name);
        if (info?.Id === image.imageId) await engine.removeImage(name);
      }
      const left = await engine.inspectImage(image.imageId);
      if (left && (left.RepoTags ?? []).length === 0 && !images.inUse(image.imageId)) await engine.removeImage(image.imageId);
      await images.forget(image.imageId);
      const gone = (await engine.inspectImage(image.imageId)) === undefined;
      log.info(gone ? 'removed image' : 'released image (another reference keeps it)', { imageId: image.imageId, names: image.names, reason, lastUsed: new Date(image.lastUsed).toISOString() });
      return gone;
    } catch (err) {
      if (err instanceof EngineError && err.kind === 'conflict') {
        log.debug('image kept: a container uses it', { imageId: image.imageId, names: image.names });
      } else {
        log.warn('could not remove image', { imageId: image.imageId, names: image.names, error: (err as Error).message });
      }
      return false;
    }
  }
}
