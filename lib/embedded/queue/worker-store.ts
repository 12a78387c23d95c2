// Workers and task queues the queue has seen (through claimWork, claimTask, reclaimTask and
// declareWorker): when they were first and last active, their recent tasks, quarantine.
// A task queue lives 5 days after it was last seen, a worker 1 day (longer if quarantined).
import { SqlStore, type Database } from '../store.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS queue_task_queues (
  task_queue_id TEXT PRIMARY KEY,
  description TEXT NOT NULL DEFAULT '',
  stability TEXT NOT NULL DEFAULT 'experimental',
  expires INTEGER NOT NULL,
  last_date_active INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS queue_workers (
  task_queue_id TEXT NOT NULL,
  worker_group TEXT NOT NULL,
  worker_id TEXT NOT NULL,
  first_claim INTEGER NOT NULL,
  last_date_active INTEGER NOT NULL,
  expires INTEGER NOT NULL,
  quarantine_until INTEGER,
  quarantine_details TEXT NOT NULL DEFAULT '[]',
  recent_tasks TEXT NOT NULL DEFAULT '[]',
  PRIMARY KEY (task_queue_id, worker_group, worker_id)
);
`;

const TASK_QUEUE_TTL_MS = 5 * 24 * 3600 * 1000;
const WORKER_TTL_MS = 24 * 3600 * 1000;
const RECENT_TASKS = 20;

export interface TaskQueueInfo { taskQueueId: string; description: string; stability: string; expires: string; lastDateActive: string }

export interface QuarantineDetail { clientId: string; updatedAt: string; quarantineUntil: string; quarantineInfo: string }

export interface WorkerInfo {
  taskQueueId: string;
  workerGroup: string;
  workerId: string;
  firstClaim: string;
  lastDateActive: string;
  expires: string;
  quarantineUntil?: string;
  quarantineDetails: QuarantineDetail[];
  recentTasks: { taskId: string; runId: number }[];
}

interface TaskQueueRow { task_queue_id: string; description: string; stability: string; expires: number; last_date_active: number }
interface WorkerRow {
  task_queue_id: string; worker_group: string; worker_id: string; first_claim: number; last_date_active: number;
  expires: number; quarantine_until: number | null; quarantine_details: string; recent_tasks: string;
}

const iso = (ms: number) => new Date(ms).toJSON();

function taskQueueFromRow(r: TaskQueueRow): TaskQueueInfo {
  return { taskQueueId: r.task_queue_id, description: r.description, stability: r.stability, expires: iso(r.expires), lastDateActive: iso(r.last_date_active) };
}

function workerFromRow(r: WorkerRow): WorkerInfo {
  const w: WorkerInfo = {
    taskQueueId: r.task_queue_id, workerGroup: r.worker_group, workerId: r.worker_id,
    firstClaim: iso(r.first_claim), lastDateActive: iso(r.last_date_active), expires: iso(r.expires),
    quarantineDetails: JSON.parse(r.quarantine_details), recentTasks: JSON.parse(r.recent_tasks),
  };
  if (r.quarantine_until !== null) w.quarantineUntil = iso(r.quarantine_until);
  return w;
}

export class WorkerStore extends SqlStore {
  constructor(db: Database) {
    super(db, SCHEMA);
  }

  taskQueueSeen(taskQueueId: string, now: number, expires = now + TASK_QUEUE_TTL_MS): void {
    this.sql(`INSERT INTO queue_task_queues (task_queue_id, expires, last_date_active) VALUES (?, ?, ?)
      ON CONFLICT (task_queue_id) DO UPDATE SET expires = MAX(expires, excluded.expires), last_date_active = excluded.last_date_active`)
      .run(taskQueueId, expires, now);
  }

  /** Records that a worker was active now (and its task queue). */
  workerSeen(taskQueueId: string, workerGroup: string, workerId: string, now: number, expires = now + WORKER_TTL_MS): void {
    this.taskQueueSeen(taskQueueId, now);
    this.sql(`INSERT INTO queue_workers (task_queue_id, worker_group, worker_id, first_claim, last_date_active, expires)
      VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (task_queue_id, worker_group, worker_id) DO UPDATE SET
        last_date_active = excluded.last_date_active, expires = MAX(expires, excluded.expires)`)
      .run(taskQueueId, workerGroup, workerId, now, now, expires);
  }

  tasksClaimed(taskQueueId: string, workerGroup: string, workerId: string, runs: { taskId: string; runId: number }[]): void {
    if (runs.length === 0) return;
    const worker = this.worker(taskQueueId, workerGroup, workerId);
    if (!worker) return;
    const recent = [...worker.recentTasks, ...runs].slice(-RECENT_TASKS);
    this.sql('UPDATE queue_workers SET recent_tasks = ? WHERE task_queue_id = ? AND worker_group = ? AND worker_id = ?')
      .run(JSON.stringify(recent), taskQueueId, workerGroup, workerId);
  }

  isQuarantined(taskQueueId: string, workerGroup: string, workerId: string, now: number): boolean {
    const row = this.sql('SELECT quarantine_until FROM queue_workers WHERE task_queue_id = ? AND worker_group = ? AND worker_id = ?')
      .get(taskQueueId, workerGroup, workerId) as { quarantine_until: number | null } | undefined;
    return !!row && row.quarantine_until !== null && row.quarantine_until > now;
  }

  /** Sets the quarantine of a known worker; undefined when the worker is unknown. */
  quarantine(taskQueueId: string, workerGroup: string, workerId: string, detail: QuarantineDetail): WorkerInfo | undefined {
    const worker = this.worker(taskQueueId, workerGroup, workerId);
    if (!worker) return undefined;
    const details = [...worker.quarantineDetails, detail];
    this.sql(`UPDATE queue_workers SET quarantine_until = ?, quarantine_details = ?
      WHERE task_queue_id = ? AND worker_group = ? AND worker_id = ?`)
      .run(Date.parse(detail.quarantineUntil), JSON.stringify(details), taskQueueId, workerGroup, workerId);
    return this.worker(taskQueueId, workerGroup, workerId);
  }

  worker(taskQueueId: string, workerGroup: string, workerId: string): WorkerInfo | undefined {
    const row = this.sql('SELECT * FROM queue_workers WHERE task_queue_id = ? AND worker_group = ? AND worker_id = ?')
      .get(taskQueueId, workerGroup, workerId) as WorkerRow | undefined;
    return row ? workerFromRow(row) : undefined;
  }

  /** Workers of a queue that have not expired (quarantined ones stay visible). */
  workers(taskQueueId: string, now: number, quarantined: boolean | undefined, offset: number, limit: number): WorkerInfo[] {
    const filter = quarantined === undefined ? ''
      : quarantined ? 'AND quarantine_until IS NOT NULL AND quarantine_until > :now'
        : 'AND (quarantine_until IS NULL OR quarantine_until <= :now)';
    const rows = this.sql(`SELECT * FROM queue_workers WHERE task_queue_id = :q
      AND (expires > :now OR (quarantine_until IS NOT NULL AND quarantine_until > :now)) ${filter}
      ORDER BY worker_group, worker_id LIMIT :limit OFFSET :offset`)
      .all({ q: taskQueueId, now, limit, offset }) as unknown as WorkerRow[];
    return rows.map(workerFromRow);
  }

  taskQueue(taskQueueId: string, now: number): TaskQueueInfo | undefined {
    const row = this.sql('SELECT * FROM queue_task_queues WHERE task_queue_id = ? AND expires > ?').get(taskQueueId, now) as TaskQueueRow | undefined;
    return row ? taskQueueFromRow(row) : undefined;
  }

  /** Live task queues, optionally of one provisioner. */
  taskQueues(now: number, offset: number, limit: number, provisionerId?: string): TaskQueueInfo[] {
    const rows = (provisionerId === undefined
      ? this.sql('SELECT * FROM queue_task_queues WHERE expires > ? ORDER BY task_queue_id LIMIT ? OFFSET ?').all(now, limit, offset)
      : this.sql(`SELECT * FROM queue_task_queues WHERE expires > ? AND substr(task_queue_id, 1, instr(task_queue_id, '/') - 1) = ?
          ORDER BY task_queue_id LIMIT ? OFFSET ?`).all(now, provisionerId, limit, offset)) as unknown as TaskQueueRow[];
    return rows.map(taskQueueFromRow);
  }

  /** Provisioners: the provisionerId parts of live task queues, with their latest activity. */
  provisioners(now: number, offset: number, limit: number, provisionerId?: string): { provisionerId: string; expires: string; lastDateActive: string }[] {
    const where = provisionerId === undefined ? '' : 'HAVING provisioner_id = :p';
    const rows = this.sql(`SELECT substr(task_queue_id, 1, instr(task_queue_id, '/') - 1) AS provisioner_id,
        MAX(expires) AS expires, MAX(last_date_active) AS last_date_active
      FROM queue_task_queues WHERE expires > :now GROUP BY provisioner_id ${where}
      ORDER BY provisioner_id LIMIT :limit OFFSET :offset`)
      .all(provisionerId === undefined ? { now, limit, offset } : { now, limit, offset, p: provisionerId }) as
      { provisioner_id: string; expires: number; last_date_active: number }[];
    return rows.map((r) => ({ provisionerId: r.provisioner_id, expires: iso(r.expires), lastDateActive: iso(r.last_date_active) }));
  }

  deleteExpired(now: number): void {
    this.sql('DELETE FROM queue_task_queues WHERE expires <= ?').run(now);
    this.sql('DELETE FROM queue_workers WHERE expires <= ? AND (quarantine_until IS NULL OR quarantine_until <= ?)').run(now, now);
  }
}
