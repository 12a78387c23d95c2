// Task groups: every task of a group has the same schedulerId; a sealed group accepts no
// new tasks; a group lives an hour longer than its longest-lived task (the real queue's
// ensure_task_group: inserted at the task's expires + 1 hour, moved to a later task's expires
// + 1 hour), so the expiry sweep removes the group only after its tasks.
import { SqlStore, type Database } from '../store.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS queue_task_groups (
  task_group_id TEXT PRIMARY KEY,
  scheduler_id TEXT NOT NULL,
  expires INTEGER NOT NULL,
  sealed INTEGER
);
CREATE INDEX IF NOT EXISTS queue_task_groups_by_expires ON queue_task_groups(expires);
`;

const GROUP_OUTLIVES_TASKS_MS = 60 * 60 * 1000;

export interface TaskGroup { taskGroupId: string; schedulerId: string; expires: string; sealed?: string }

interface Row { task_group_id: string; scheduler_id: string; expires: number; sealed: number | null }

export class TaskGroupStore extends SqlStore {
  constructor(db: Database) {
    super(db, SCHEMA);
  }

  get(taskGroupId: string): TaskGroup | undefined {
    const row = this.sql('SELECT * FROM queue_task_groups WHERE task_group_id = ?').get(taskGroupId) as Row | undefined;
    if (!row) return undefined;
    const group: TaskGroup = { taskGroupId: row.task_group_id, schedulerId: row.scheduler_id, expires: new Date(row.expires).toJSON() };
    if (row.sealed !== null) group.sealed = new Date(row.sealed).toJSON();
    return group;
  }

  /** Declares a task's membership: 'scheduler-conflict' or 'sealed' when it may not join. */
  ensure(taskGroupId: string, schedulerId: string, taskExpires: number): 'ok' | 'scheduler-conflict' | 'sealed' {
    const existing = this.get(taskGroupId);
    if (!existing) {
      this.sql('INSERT INTO queue_task_groups (task_group_id, scheduler_id, expires, sealed) VALUES (?, ?, ?, NULL)')
        .run(taskGroupId, schedulerId, taskExpires + GROUP_OUTLIVES_TASKS_MS);
      return 'ok';
    }
    if (existing.schedulerId !== schedulerId) return 'scheduler-conflict';
    if (taskExpires > Date.parse(existing.expires)) {
      this.sql('UPDATE queue_task_groups SET expires = ? WHERE task_group_id = ?').run(taskExpires + GROUP_OUTLIVES_TASKS_MS, taskGroupId);
    }
    return existing.sealed ? 'sealed' : 'ok';
  }

  seal(taskGroupId: string, now: number): void {
    this.sql('UPDATE queue_task_groups SET sealed = ? WHERE task_group_id = ? AND sealed IS NULL').run(now, taskGroupId);
  }

  deleteExpired(now: number): number {
    return Number(this.sql('DELETE FROM queue_task_groups WHERE expires <= ?').run(now).changes);
  }
}
