// The one retry helper and backoff formula of the worker (queue, registries, artifact
// storage, image downloads): network errors and 5xx answers are retried, a 4xx never is (the
// request itself is wrong; repeating it cannot help).
import { setTimeout as sleep } from 'node:timers/promises';

export interface RetryOptions {
  /** Retries after the first attempt (default 5). */
  retries?: number;
  /** Delay before the first retry in ms, doubled each time (default 200). */
  baseDelayMs?: number;
  /** Ceiling for one delay in ms (default 30 s). */
  maxDelayMs?: number;
  /** Spread delays by +-25% so that many requests failing together spread out (default true). */
  jitter?: boolean;
  /** Whether an error is worth another try (default isRetriable). */
  shouldRetry?: (error: unknown) => boolean;
  /** Called before each retry, e.g. to log it. */
  onRetry?: (error: Error, attempt: number, delayMs: number) => void;
  /** After the wait, before the next attempt (e.g. to look something up again); a throw ends the retries. */
  beforeRetry?: (attempt: number) => Promise<void>;
  /** Aborts the wait between attempts (the wait rejects). */
  signal?: AbortSignal;
}

/** The delay before retry number `attempt` (1, 2, ...): `baseDelayMs` doubling, at most `maxDelayMs`. */
export function backoffDelayMs(attempt: number, baseDelayMs: number, maxDelayMs = Infinity): number {
  return Math.min(maxDelayMs, baseDelayMs * 2 ** Math.max(0, attempt - 1));
}

/** The HTTP status carried by an error (taskcluster-client, fetch, the engine), if any. */
export function statusCodeOf(err: unknown): number | undefined {
  const status = (err as { statusCode?: unknown })?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

/** An HTTP answer that was not a success. */
export class HttpStatusError extends Error {
  readonly statusCode: number;
  constructor(statusCode: number, message: string) {
    super(message);
    this.name = 'HttpStatusError';
    this.statusCode = statusCode;
  }
}

/** Network failures and server errors are worth another try; client errors are not. */
export function isRetriable(error: unknown): boolean {
  if ((error as { retriable?: unknown })?.retriable === false) return false;
  const status = statusCodeOf(error);
  if (status !== undefined) return status >= 500;
  return true;
}

export async function withRetries<T>(attempt: (n: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const retries = options.retries ?? 5;
  const base = options.baseDelayMs ?? 200;
  const max = options.maxDelayMs ?? 30_000;
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      if (n > retries || !(options.shouldRetry ?? isRetriable)(err)) throw err;
      const delay = backoffDelayMs(n, base, max) * (options.jitter === false ? 1 : 0.75 + Math.random() * 0.5);
      options.onRetry?.(err as Error, n, delay);
      await sleep(delay, undefined, options.signal ? { signal: options.signal } : undefined);
      await options.beforeRetry?.(n + 1);
    }
  }
}
