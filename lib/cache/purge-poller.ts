// Asks the purge-cache service for purge requests of this worker pool (at most every
// `intervalSeconds`, from the claim gate: before claiming; and again before a task's caches
// are acquired when the last answer is older than FRESH_MS, so a request reaches every task
// claimed after it) and purges matching volume cache instances created before each request's
// `before`. The service itself answers from a list it re-reads every 10 s (the real
// purge-cache's `cacheTime`), so a request takes up to that long to be seen at all. The first poll asks for every open
// request (requests made while the worker was down apply to the instances it adopted);
// later polls ask `since` the previous poll (less a margin for clock skew: purging twice
// is harmless). A failing service is logged and retried next time, never fatal.
import taskcluster from 'taskcluster-client';
import type { WorkerLog } from '../log/worker-log.ts';

export interface PurgeRequestList { requests: { provisionerId?: string; workerType?: string; cacheName: string; before: string }[] }

/** The purge-cache call the poller makes (taskcluster-client's PurgeCache). */
export interface PurgeCacheClient {
  purgeRequests(workerPoolId: string, query?: { since?: string }): Promise<PurgeRequestList>;
}

/** What the poller purges: VolumeCaches. */
export interface PurgeableCaches {
  purge(name: string, before: Date): Promise<number>;
}

export interface PurgePollerOptions {
  client: PurgeCacheClient;
  /** `<provisionerId>/<workerType>` */
  workerPoolId: string;
  caches: PurgeableCaches;
  intervalSeconds: number;
  log: WorkerLog;
  now?: () => number;
}

const SKEW_MARGIN_MS = 5 * 60_000;
/** An answer asked for within this long is fresh enough for a task about to get its caches. */
export const FRESH_MS = 2_000;
/** How long a task waits for that answer before going on without it (the poll goes on). */
const REFRESH_WAIT_MS = 5_000;

export function purgeCacheClient(deployment: { rootUrl: string; credentials: { clientId: string; accessToken: string; certificate?: string } }): PurgeCacheClient {
  const PurgeCache = (taskcluster as unknown as { PurgeCache: new (o: unknown) => PurgeCacheClient }).PurgeCache;
  return new PurgeCache({ rootUrl: deployment.rootUrl, credentials: deployment.credentials });
}

export class PurgePoller {
  private readonly options: PurgePollerOptions;
  private readonly now: () => number;
  private lastPoll: number | undefined;
  /** When the last successful answer was asked for: it holds every request made before then. */
  private answeredAsOf: number | undefined;
  private since: string | undefined;
  private running: { started: number; done: Promise<void> } | undefined;

  constructor(options: PurgePollerOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
  }

  /** Polls if the last poll is at least intervalSeconds old; never throws. */
  async maybePoll(): Promise<void> {
    if (this.lastPoll !== undefined && this.now() - this.lastPoll < this.options.intervalSeconds * 1000) return;
    await this.poll();
  }

  /** Polls now (joining a poll under way); never throws. */
  poll(): Promise<void> {
    if (!this.running) {
      const started = this.now();
      this.running = { started, done: this.pollOnce(started).finally(() => { this.running = undefined; }) };
    }
    return this.running.done;
  }

  /**
   * Before a task's caches are acquired: unless an answer asked for within `maxAgeMs` is in (or
   * on its way), polls, and waits for the answer at most `waitMs` (a slow service delays the
   * task that long, never fails it). Never throws.
   */
  async refresh(maxAgeMs = FRESH_MS, waitMs = REFRESH_WAIT_MS): Promise<void> {
    const oldest = this.now() - maxAgeMs;
    if (this.answeredAsOf !== undefined && this.answeredAsOf >= oldest) return;
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<void>((resolve) => { timer = setTimeout(resolve, waitMs); });
    const fresh = (async () => {
      if (this.running && this.running.started < oldest) await this.running.done; // asked too early
      await this.poll();
    })();
    try {
      await Promise.race([fresh, gaveUp]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async pollOnce(started: number): Promise<void> {
    const { client, workerPoolId, caches, log } = this.options;
    this.lastPoll = started;
    let list: PurgeRequestList;
    try {
      list = await client.purgeRequests(workerPoolId, this.since ? { since: this.since } : {});
    } catch (err) {
      log.warn('could not fetch purge-cache requests', { workerPoolId, error: (err as Error).message });
      return;
    }
    for (const request of list.requests) {
      const before = new Date(request.before);
      if (Number.isNaN(before.getTime())) continue;
      try {
        await caches.purge(request.cacheName, before);
      } catch (err) {
        log.warn('could not purge volume cache', { cacheName: request.cacheName, error: (err as Error).message });
      }
    }
    this.answeredAsOf = started;
    this.since = new Date(started - SKEW_MARGIN_MS).toISOString();
  }
}
