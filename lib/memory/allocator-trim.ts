// Gives the memory glibc keeps back to the system once the worker is idle.
//
// After work the worker's glibc heap holds megabytes of freed chunks between live ones (the
// bodies of API calls, V8's compiler zones, stream buffers). glibc returns only the top of the
// heap by itself, so a worker that ran a hundred tasks stayed 11-15 % above its idle RSS for
// good, although a full garbage collection found nothing to free. malloc_trim(0) hands every
// whole free page back (measured: 22.8 -> 15.5 MB of heap after 100 mixed tasks). It is
// glibc's and has no Node.js binding, so native/malloc-trim.c (Node-API, built by `make deps`)
// provides one; without it the worker runs as before.
//
// A trim only hands back what is already freed, and an idle worker's garbage is not: V8
// collects when it allocates, and an idle worker hardly does. Measured 65 s after a 2,000-task
// soak: 6.9 MB of dead stream buffers (arrayBuffers) still held, RSS 113.6 MB against 96.9
// before the first task; a full collection, then a trim: 95.9 MB. So each trim follows a full
// garbage collection when the process has one to call (`bin/worker` runs Node with
// --expose-gc); an idle worker has nothing to keep waiting, and the pause (tens of ms) delays no task.
import { createRequire } from 'node:module';

const ADDON = new URL('../../native/build/malloc-trim.node', import.meta.url).pathname;

export interface TrimResult {
  /** Whether a full garbage collection ran first (only with --expose-gc). */
  collected: boolean;
  /** Whether glibc released pages (false without the addon). */
  released: boolean;
  rssBeforeMb: number; rssAfterMb: number; ms: number;
}

/** The full garbage collection of `--expose-gc`, when the process was started with it. */
export function exposedGarbageCollector(): (() => void) | undefined {
  const gc = (globalThis as { gc?: unknown }).gc;
  return typeof gc === 'function' ? () => { (gc as () => void)(); } : undefined;
}

export interface AllocatorTrim {
  /** Returns freed heap pages to the system; true when glibc released some. */
  trim(): boolean;
}

/** The addon, or why it is not there (a sentence for the worker's log). */
export function loadAllocatorTrim(path = ADDON): AllocatorTrim | { unavailable: string } {
  try {
    const addon = createRequire(import.meta.url)(path) as { trim?: unknown };
    if (typeof addon.trim !== 'function') return { unavailable: `${path} has no trim()` };
    const trim = addon.trim as () => unknown;
    return { trim: () => trim() === true };
  } catch (err) {
    return { unavailable: `${path} did not load (${(err as Error).message.split('\n')[0]}); run \`make deps\` to build it` };
  }
}

/**
 * Collects and trims at each of `delaysMs` after the worker went idle: \`idle()\` when the last
 * task finished, \`busy()\` when one starts again (the pending trims are dropped). More than
 * one: a task's last buffers are released a while after it (sockets kept alive, the live log's
 * grace period); a trim gives back only what was freed before it. Timers never keep the process alive.
 */
export class IdleTrim {
  #timers: NodeJS.Timeout[] = [];
  readonly #allocator: AllocatorTrim | undefined;
  readonly #delaysMs: readonly number[];
  readonly #onTrim: (result: TrimResult) => void;
  readonly #collect: (() => void) | undefined;

  /** `collect`: a full garbage collection to run before each trim (exposedGarbageCollector()). */
  constructor(allocator: AllocatorTrim | undefined, delaysMs: readonly number[], onTrim: (result: TrimResult) => void = () => {}, collect?: () => void) {
    this.#allocator = allocator;
    this.#delaysMs = delaysMs;
    this.#onTrim = onTrim;
    this.#collect = collect;
  }

  idle(): void {
    if ((!this.#allocator && !this.#collect) || this.#timers.length > 0) return;
    this.#timers = this.#delaysMs.map((ms) => {
      const timer: NodeJS.Timeout = setTimeout(() => {
        this.#timers = this.#timers.filter((t) => t !== timer); // once all have fired, idle() arms them again
        this.trimNow();
      }, ms).unref();
      return timer;
    });
  }

  busy(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers = [];
  }

  trimNow(): void {
    if (!this.#allocator && !this.#collect) return;
    const rssBefore = process.memoryUsage.rss();
    const start = performance.now();
    this.#collect?.();
    const released = this.#allocator?.trim() ?? false;
    const ms = performance.now() - start;
    const mb = (bytes: number) => Math.round(bytes / 1048576 * 10) / 10;
    this.#onTrim({ collected: this.#collect !== undefined, released, rssBeforeMb: mb(rssBefore), rssAfterMb: mb(process.memoryUsage.rss()), ms: Math.round(ms * 100) / 100 });
  }
}
