// The purge-cache service: purgeCache records a request to purge a named cache on a worker
// pool (`<provisionerId>/<workerType>`); workers poll purgeRequests with `since`. As the real
// service does, purgeRequests answers from the pool's list as it read it at most
// `purgeRequestsCacheSeconds` ago (10 s), so a new request is seen within that time.
import type { EmbeddedContext, ServiceParts } from '../context.ts';
import type { Handler } from '../api/service.ts';
import { Reply } from '../api/service.ts';
import { ApiError, inputError } from '../api/errors.ts';
import { pageRequest } from '../index/paging.ts';
import { PurgeRequests, type PurgeRequest } from './purge-requests.ts';

const WORKER_POOL_ID = /^[a-zA-Z0-9-_]{1,38}\/[a-zA-Z0-9-_]{1,38}$/;

function checkWorkerPoolId(workerPoolId: string): void {
  if (!WORKER_POOL_ID.test(workerPoolId)) {
    throw new ApiError('InvalidRequestArguments', `Invalid URL patterns:\nURL parameter 'workerPoolId' given as '${workerPoolId}' must match regular expression: '${WORKER_POOL_ID}' (<provisionerId>/<workerType>: letters, digits, - and _, at most 38 each)`);
  }
}

function parseSince(since: string | undefined): number {
  if (since === undefined) return 0;
  const time = Date.parse(since);
  if (Number.isNaN(time)) throw inputError(`since ${JSON.stringify(since)} is not a date-time (use ISO 8601, e.g. 2024-01-01T00:00:00.000Z)`);
  return time;
}

export function purgeCacheService(ctx: EmbeddedContext): ServiceParts {
  const requests = new PurgeRequests(ctx.db);
  const readLately = new Map<string, { read: number; requests: PurgeRequest[] }>();
  const openRequests = (workerPoolId: string): PurgeRequest[] => {
    const now = Date.now();
    let entry = readLately.get(workerPoolId);
    if (!entry || now - entry.read > ctx.settings.purgeRequestsCacheSeconds * 1000) {
      entry = { read: now, requests: requests.forPool(workerPoolId, 0) };
      readLately.set(workerPoolId, entry);
    }
    return entry.requests;
  };

  const handlers: Record<string, Handler> = {
    purgeCache(req) {
      const { cacheName } = req.body as { cacheName: string };
      req.authorize({ cacheName });
      checkWorkerPoolId(req.params.workerPoolId);
      requests.add(req.params.workerPoolId, cacheName);
      return new Reply(204, undefined);
    },
    purgeRequests(req) {
      checkWorkerPoolId(req.params.workerPoolId);
      const since = parseSince(req.query.since);
      return { requests: openRequests(req.params.workerPoolId).filter((r) => Date.parse(r.before) >= since) };
    },
    allPurgeRequests(req) {
      return requests.all(pageRequest(req.query));
    },
  };

  const sweep = () => {
    requests.sweep();
    const stale = Date.now() - ctx.settings.purgeRequestsCacheSeconds * 1000;
    for (const [pool, entry] of readLately) if (entry.read < stale) readLately.delete(pool);
  };
  return { handlers, sweep };
}
