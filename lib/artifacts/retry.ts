// Retries with exponential backoff for artifact storage requests: network errors and 5xx
// answers are retried, a 4xx never is (the request itself is wrong; repeating it cannot help).

export interface RetryOptions {
  /** Retries after the first attempt (default 5). */
  retries?: number;
  /** Delay before the first retry in ms, doubled each time (default 200). */
  baseDelayMs?: number;
  /** Ceiling for one delay in ms (default 30 s). */
  maxDelayMs?: number;
  /** Called before each retry, e.g. to log it. */
  onRetry?: (error: Error, attempt: number, delayMs: number) => void;
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
  const status = (error as { statusCode?: unknown })?.statusCode;
  if (typeof status === 'number') return status >= 500;
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
      if (n > retries || !isRetriable(err)) throw err;
      // Full backoff with +-25% jitter so that many uploads failing together spread out.
      const delay = Math.min(max, base * 2 ** (n - 1)) * (0.75 + Math.random() * 0.5);
      options.onRetry?.(err as Error, n, delay);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}
