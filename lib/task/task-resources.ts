// Stage 7: what a task run holds until it ends — the container, the cache instances, the
// image lease and the features' per-task halves — and giving them back, on every path, once,
// within the cleanup deadline (not the task's: a hung engine call must not keep the run
// unresolved). Order: the container (with its anonymous volumes), then the cache instances
// (only once the container is gone; abandoned when it could not be removed) and the image
// lease; last, after the log hooks, the features' cleanup in reverse registry order (a per-task
// network can be removed only once the container is gone).
import type { CacheLease } from '../cache/volume-cache.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Engine } from '../docker/engine.ts';
import { EngineError } from '../docker/engine-error.ts';
import type { TaskFeatures } from '../features/task-features.ts';
import type { WorkerLog } from '../log/worker-log.ts';
import { settleWithin } from './deadline.ts';

export const CLEANUP_DEADLINE_MS = 60_000;

export interface TaskResourcesOptions {
  taskId: string;
  runId: number;
  engine: Engine;
  log: WorkerLog;
  deadlineMs?: number;
}

export class TaskResources {
  containerId: string | undefined;
  cacheLease: CacheLease | undefined;
  imageRelease: (() => void) | undefined;
  features: TaskFeatures | undefined;
  /** The exit status is one of payload.onExitStatus.purgeCaches: the instances are deleted. */
  purgeCaches = false;
  readonly #options: TaskResourcesOptions;
  #started: number | undefined;
  #released: Promise<void> | undefined;

  constructor(options: TaskResourcesOptions) { this.#options = options; }

  get #deadlineMs(): number { return this.#options.deadlineMs ?? CLEANUP_DEADLINE_MS; }
  get #ids() { return { taskId: this.#options.taskId, runId: this.#options.runId }; }

  /** Container, caches, image: once, bounded by the deadline. Never throws. */
  async release(): Promise<void> {
    this.#started ??= Date.now();
    const containerId = this.containerId;
    this.#released ??= this.#release();
    if (!await settleWithin(this.#released, this.#deadlineMs)) {
      this.#options.log.error('cleanup exceeded its deadline; resolving the task without waiting for it', {
        ...this.#ids, containerId, deadlineSeconds: this.#deadlineMs / 1000,
      });
    }
  }

  /** The features' cleanup (once, reverse order), within what is left of the deadline. Never throws. */
  async releaseFeatures(): Promise<void> {
    const features = this.features;
    if (!features) return;
    const left = Math.max(0, this.#deadlineMs - (Date.now() - (this.#started ?? Date.now())));
    if (!await settleWithin(features.cleanup(), left)) {
      this.#options.log.error('feature cleanup exceeded the cleanup deadline; resolving the task without waiting for it', {
        ...this.#ids, features: features.names, deadlineSeconds: this.#deadlineMs / 1000,
      });
    }
  }

  async #release(): Promise<void> {
    const { engine, log } = this.#options;
    let containerGone = true;
    if (this.containerId) {
      // An engine that does not answer (restarting) is asked again until the deadline nears.
      const giveUpAt = (this.#started ?? Date.now()) + this.#deadlineMs - 2000;
      for (let attempt = 1; ; attempt++) {
        try {
          await engine.removeContainer(this.containerId);
          if (attempt > 1) log.info('task container removed once the engine answered again', { ...this.#ids, containerId: this.containerId, attempts: attempt });
          break;
        } catch (err) {
          if (err instanceof EngineError && err.kind === 'unreachable' && Date.now() + 1000 < giveUpAt) {
            if (attempt === 1) log.warn('the Docker engine does not answer; removing the task container once it does', { ...this.#ids, containerId: this.containerId, error: err.message });
            await sleep(1000);
            continue;
          }
          containerGone = false;
          log.error('could not remove task container', { ...this.#ids, containerId: this.containerId, error: (err as Error).message });
          break;
        }
      }
    }
    // A container that could not be removed may still write to its cache instances: they are
    // given up for good rather than handed to the next task.
    const lease = this.cacheLease;
    await (containerGone ? lease?.release(this.purgeCaches) : lease?.abandon())?.catch((err: Error) =>
      log.error('could not release cache instances', { ...this.#ids, error: err.message }));
    try { this.imageRelease?.(); } catch (err) {
      log.error('could not release the image lease', { ...this.#ids, error: (err as Error).message });
    }
  }
}
