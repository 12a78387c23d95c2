// Gives the memory glibc keeps back to the system once the worker is idle.
//
// After work the worker's glibc heap holds megabytes of freed chunks between live ones (the
// bodies of API calls, V8's compiler zones, stream buffers). glibc returns only the top of the
// heap by itself, so a worker that ran a hundred tasks stayed 11-15 % above its idle RSS for
// good, although a full garbage collection found nothing to free. malloc_trim(0) hands every
// whole free page back (measured: 22.8 -> 15.5 MB of heap after 100 mixed tasks). It is
// glibc's and has no Node.js binding, so native/malloc-trim.c (Node-API, built by `make deps`)
// provides one; without it the worker runs as before.
import { createRequire } from 'node:module';

const ADDON = new URL('../../native/build/malloc-trim.node', import.meta.url).pathname;

export interface TrimResult { released: boolean; rssBeforeMb: number; rssAfterMb: number; ms: number }

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
 * Trims at each of `delaysMs` after the worker went idle: \`idle()\` when the last task finished,
 * \`busy()\` when one starts again (the pending trims are dropped). More than one: buffers a
 * finished task left are freed by V8's collections, which come seconds after the last task and
 * again later; a trim gives back only what was freed before it. Timers never keep the process alive.
 */
export class IdleTrim {
  #timers: NodeJS.Timeout[] = [];
  readonly #allocator: AllocatorTrim | undefined;
  readonly #delaysMs: readonly number[];
  readonly #onTrim: (result: TrimResult) => void;

  constructor(allocator: AllocatorTrim | undefined, delaysMs: readonly number[], onTrim: (result: TrimResult) => void = () => {}) {
    this.#allocator = allocator;
    this.#delaysMs = delaysMs;
    this.#onTrim = onTrim;
  }

  idle(): void {
    if (!this.#allocator || this.#timers.length > 0) return;
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
    if (!this.#allocator) return;
    const rssBefore = process.memoryUsage.rss();
    const start = performance.now();
    const released = this.#allocator.trim();
    const ms = performance.now() - start;
    const mb = (bytes: number) => Math.round(bytes / 1048576 * 10) / 10;
    this.#onTrim({ released, rssBeforeMb: mb(rssBefore), rssAfterMb: mb(process.memoryUsage.rss()), ms: Math.round(ms * 100) / 100 });
  }
}
