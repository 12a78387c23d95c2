// How long the engine has to answer the calls a task makes before its container starts: a
// hung engine (its socket takes connections, nothing answers) must not hold a run, and the
// worker's slot, until the task's deadline. Short calls (create, inspect, attach, start, network and
// volume calls) get a bounded time; pulls and image loads, which can rightly take long, get a
// stall time instead: no progress for that long, however long they take in all.
import { EngineError } from './engine-error.ts';

export interface EngineTimeouts {
  /** How long a short call (create, inspect, attach, start, network, volume) may go unanswered. */
  callMs: number;
  /** How long a pull or an image load may go without progress. */
  progressMs: number;
}

export const DEFAULT_ENGINE_TIMEOUTS: EngineTimeouts = { callMs: 60_000, progressMs: 300_000 };

const seconds = (ms: number) => `${Number((ms / 1000).toFixed(3))} second${ms === 1000 ? '' : 's'}`;

/** The error for a call the engine did not answer in time: an engine that does not answer ('unreachable'). */
export function engineHungError(action: string, ms: number, socketPath: string): EngineError {
  return new EngineError('unreachable', `Docker engine at ${socketPath} did not answer within ${seconds(ms)} when asked to ${action}: it is hung`);
}

/** The error for a pull or load the engine stopped making progress on. */
export function engineStalledError(action: string, ms: number, socketPath: string): EngineError {
  return new EngineError('unreachable', `Docker engine at ${socketPath} made no progress for ${seconds(ms)} when asked to ${action}: it is hung`);
}

/**
 * `work`, or `timedOut()` thrown once `ms` pass without an answer. An answer that comes later
 * (the engine thawed) is handed to `late`, so that what it created is removed; a late failure
 * is dropped.
 */
export function answerWithin<T>(work: Promise<T>, ms: number, timedOut: () => Error, late?: (value: T) => unknown): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let expired = false;
    const timer = setTimeout(() => { expired = true; reject(timedOut()); }, ms);
    work.then(
      (value) => {
        if (!expired) { clearTimeout(timer); resolve(value); return; }
        try { void Promise.resolve(late?.(value)).catch(() => undefined); } catch { /* best effort */ }
      },
      (err: unknown) => { if (!expired) { clearTimeout(timer); reject(err); } },
    );
  });
}

/**
 * A stall clock for a pull or a load: once `ms` pass without progress(), `signal` is aborted
 * and `stalled` rejects, both with `stallError()` (what the caller races its work against, and
 * aborts its requests with). `waiting()`, asked when the time is up, may say that the engine was
 * not the one keeping us waiting (nothing was waiting for it): the clock then starts again.
 */
export class StallClock {
  readonly signal: AbortSignal;
  readonly stalled: Promise<never>;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  readonly #ms: number;
  readonly #controller = new AbortController();
  readonly #stallError: () => Error;
  readonly #waiting: () => boolean;

  constructor(ms: number, stallError: () => Error, waiting: () => boolean = () => true) {
    this.#ms = ms; this.#stallError = stallError; this.#waiting = waiting;
    this.signal = this.#controller.signal;
    this.stalled = new Promise<never>((_resolve, reject) => {
      this.signal.addEventListener('abort', () => reject(this.signal.reason), { once: true });
    });
    this.stalled.catch(() => undefined); // raced, or never looked at
    this.progress();
  }

  progress(): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      if (this.#stopped) return;
      if (!this.#waiting()) { this.progress(); return; }
      this.#stopped = true;
      this.#controller.abort(this.#stallError());
    }, this.#ms);
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }
}
