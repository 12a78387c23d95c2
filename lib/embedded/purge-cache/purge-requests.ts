// Open purge-cache requests: one per (workerPoolId, cacheName), whose `before` is when the
// latest purge was asked for. Workers drop cached volumes created before that time. A
// request is kept for a day (workers poll far more often), then the sweep deletes it.
import type { Database } from '../store.ts';
import { pageOf, type PageRequest } from '../index/paging.ts';

export interface PurgeRequest { provisionerId: string; workerType: string; cacheName: string; before: string }

const KEEP_MS = 24 * 3600 * 1000;

interface Row { worker_pool_id: string; cache_name: string; before: number; expires: number }

function toRequest(r: Row): PurgeRequest {
  const [provisionerId, workerType] = r.worker_pool_id.split('/');
  return { provisionerId, workerType, cacheName: r.cache_name, before: new Date(r.before).toISOString() };
}

export class PurgeRequests {
  private readonly db: Database;

  constructor(db: Database) {
    this.db = db;
    db.exec(`CREATE TABLE IF NOT EXISTS purge_cache_requests (
      worker_pool_id TEXT NOT NULL,
      cache_name TEXT NOT NULL,
      before INTEGER NOT NULL,
      expires INTEGER NOT NULL,
      PRIMARY KEY (worker_pool_id, cache_name)
    )`);
  }

  add(workerPoolId: string, cacheName: string, now = Date.now()): void {
    this.db.prepare(`INSERT INTO purge_cache_requests (worker_pool_id, cache_name, before, expires) VALUES (?, ?, ?, ?)
      ON CONFLICT (worker_pool_id, cache_name) DO UPDATE SET before = excluded.before, expires = excluded.expires`)
      .run(workerPoolId, cacheName, now, now + KEEP_MS);
  }

  /** Open requests of one worker pool made at or after `since`. */
  forPool(workerPoolId: string, since: number): PurgeRequest[] {
    const rows = this.db.prepare(`SELECT * FROM purge_cache_requests WHERE worker_pool_id = ? AND before >= ? AND expires > ?
      ORDER BY cache_name`).all(workerPoolId, since, Date.now()) as unknown as Row[];
    return rows.map(toRequest);
  }

  all(page: PageRequest): { requests: PurgeRequest[]; continuationToken?: string } {
    const [pool, cache] = page.after ? [String(page.after[0]), String(page.after[1] ?? '')] : ['', ''];
    const rows = this.db.prepare(`SELECT * FROM purge_cache_requests WHERE expires > ?
      AND (worker_pool_id > ? OR (worker_pool_id = ? AND cache_name > ?))
      ORDER BY worker_pool_id, cache_name LIMIT ?`).all(Date.now(), pool, pool, cache, page.limit + 1) as unknown as Row[];
    const result = pageOf(rows, page.limit, (r) => [r.worker_pool_id, r.cache_name]);
    return { requests: result.rows.map(toRequest), continuationToken: result.continuationToken };
  }

  sweep(now = Date.now()): void {
    this.db.prepare('DELETE FROM purge_cache_requests WHERE expires <= ?').run(now);
  }
}
