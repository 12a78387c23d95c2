// The queue's tasks table: one row per task holding its definition and runs as JSON, plus
// columns derived from them (state, priority, pending order, claim and deadline times) so
// that claiming, sweeping and listing are indexed queries.
import { SqlStore, type Database } from '../store.ts';
import { priorityRank, type TaskRecord, type TaskState } from './types.ts';
import { taskState, lastRun } from './task-status.ts';

interface TaskRow {
  task_id: string;
  definition: string;
  retries_left: number;
  runs: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS queue_tasks (
  task_id TEXT PRIMARY KEY,
  task_queue_id TEXT NOT NULL,
  task_group_id TEXT NOT NULL,
  priority_rank INTEGER NOT NULL,
  state TEXT NOT NULL,
  pending_since INTEGER,
  taken_until INTEGER,
  deadline INTEGER NOT NULL,
  expires INTEGER NOT NULL,
  definition TEXT NOT NULL,
  retries_left INTEGER NOT NULL,
  runs TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_tasks_by_queue ON queue_tasks(task_queue_id, state, priority_rank, pending_since);
CREATE INDEX IF NOT EXISTS queue_tasks_by_state_taken ON queue_tasks(state, taken_until);
CREATE INDEX IF NOT EXISTS queue_tasks_by_state_deadline ON queue_tasks(state, deadline);
CREATE INDEX IF NOT EXISTS queue_tasks_by_expires ON queue_tasks(expires);
CREATE INDEX IF NOT EXISTS queue_tasks_by_group ON queue_tasks(task_group_id);
`;

const UNRESOLVED = `('unscheduled', 'pending', 'running')`;

function derived(record: TaskRecord) {
  const state = taskState(record);
  const run = lastRun(record);
  return {
    task_queue_id: record.definition.taskQueueId,
    task_group_id: record.definition.taskGroupId,
    priority_rank: priorityRank(record.definition.priority),
    state,
    pending_since: state === 'pending' && run ? Date.parse(run.scheduled) : null,
    taken_until: state === 'running' && run?.takenUntil ? Date.parse(run.takenUntil) : null,
    deadline: Date.parse(record.definition.deadline),
    expires: Date.parse(record.definition.expires),
    definition: JSON.stringify(record.definition),
    retries_left: record.retriesLeft,
    runs: JSON.stringify(record.runs),
  };
}

function fromRow(row: TaskRow): TaskRecord {
  return {
    taskId: row.task_id,
    definition: JSON.parse(row.definition),
    retriesLeft: row.retries_left,
    runs: JSON.parse(row.runs),
  };
}

export class TaskStore extends SqlStore {
  constructor(db: Database) {
    super(db, SCHEMA);
  }

  get(taskId: string): TaskRecord | undefined {
    const row = this.sql('SELECT task_id, definition, retries_left, runs FROM queue_tasks WHERE task_id = ?').get(taskId) as TaskRow | undefined;
    return row ? fromRow(row) : undefined;
  }

  insert(record: TaskRecord): void {
    const d = derived(record);
    this.sql(`INSERT INTO queue_tasks (task_id, task_queue_id, task_group_id, priority_rank, state, pending_since,
      taken_until, deadline, expires, definition, retries_left, runs)
      VALUES (:task_id, :task_queue_id, :task_group_id, :priority_rank, :state, :pending_since,
      :taken_until, :deadline, :expires, :definition, :retries_left, :runs)`).run({ task_id: record.taskId, ...d });
  }

  update(record: TaskRecord): void {
    const d = derived(record);
    this.sql(`UPDATE queue_tasks SET task_queue_id = :task_queue_id, task_group_id = :task_group_id,
      priority_rank = :priority_rank, state = :state, pending_since = :pending_since, taken_until = :taken_until,
      deadline = :deadline, expires = :expires, definition = :definition, retries_left = :retries_left, runs = :runs
      WHERE task_id = :task_id`).run({ task_id: record.taskId, ...d });
  }

  delete(taskId: string): void {
    this.sql('DELETE FROM queue_tasks WHERE task_id = ?').run(taskId);
  }

  /**
   * Pending tasks of a queue, highest priority first, then oldest first. The queue's index is
   * named: left to itself SQLite took the (state, deadline) index for `state = 'pending' AND
   * deadline > ?`, reading every pending task of every queue and sorting them on each claim.
   */
  pendingTaskIds(taskQueueId: string, limit: number, now: number): string[] {
    const rows = this.sql(`SELECT task_id FROM queue_tasks INDEXED BY queue_tasks_by_queue
      WHERE task_queue_id = ? AND state = 'pending' AND deadline > ?
      ORDER BY priority_rank, pending_since, rowid LIMIT ?`).all(taskQueueId, now, limit) as { task_id: string }[];
    return rows.map((r) => r.task_id);
  }

  countInState(taskQueueId: string, state: TaskState): number {
    const row = this.sql('SELECT COUNT(*) AS n FROM queue_tasks WHERE task_queue_id = ? AND state = ?').get(taskQueueId, state) as { n: number };
    return row.n;
  }

  /** Tasks of a queue in a state, in queue order, as records. */
  listInState(taskQueueId: string, state: 'pending' | 'running', offset: number, limit: number): TaskRecord[] {
    const rows = this.sql(`SELECT task_id, definition, retries_left, runs FROM queue_tasks WHERE task_queue_id = ? AND state = ?
      ORDER BY priority_rank, pending_since, rowid LIMIT ? OFFSET ?`).all(taskQueueId, state, limit, offset) as unknown as TaskRow[];
    return rows.map(fromRow);
  }

  listGroup(taskGroupId: string, offset: number, limit: number): TaskRecord[] {
    const rows = this.sql(`SELECT task_id, definition, retries_left, runs FROM queue_tasks WHERE task_group_id = ?
      ORDER BY rowid LIMIT ? OFFSET ?`).all(taskGroupId, limit, offset) as unknown as TaskRow[];
    return rows.map(fromRow);
  }

  unresolvedInGroup(taskGroupId: string): string[] {
    const rows = this.sql(`SELECT task_id FROM queue_tasks WHERE task_group_id = ? AND state IN ${UNRESOLVED} ORDER BY rowid`)
      .all(taskGroupId) as { task_id: string }[];
    return rows.map((r) => r.task_id);
  }

  countGroup(taskGroupId: string): number {
    return (this.sql('SELECT COUNT(*) AS n FROM queue_tasks WHERE task_group_id = ?').get(taskGroupId) as { n: number }).n;
  }

  /** Running tasks whose claim has expired. */
  claimsExpiredBy(now: number, limit: number): string[] {
    const rows = this.sql(`SELECT task_id FROM queue_tasks WHERE state = 'running' AND taken_until <= ? LIMIT ?`)
      .all(now, limit) as { task_id: string }[];
    return rows.map((r) => r.task_id);
  }

  /** Unresolved tasks past their deadline. */
  deadlinesPassedBy(now: number, limit: number): string[] {
    const rows = this.sql(`SELECT task_id FROM queue_tasks WHERE state IN ${UNRESOLVED} AND deadline <= ? LIMIT ?`)
      .all(now, limit) as { task_id: string }[];
    return rows.map((r) => r.task_id);
  }

  expiredBy(now: number, limit: number): string[] {
    const rows = this.sql('SELECT task_id FROM queue_tasks WHERE expires <= ? LIMIT ?').all(now, limit) as { task_id: string }[];
    return rows.map((r) => r.task_id);
  }
}
