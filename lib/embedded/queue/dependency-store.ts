// Task dependencies: which tasks wait for which. A row is satisfied when its required task
// resolves `completed`, or resolves at all when the dependent `requires` all-resolved. A
// dependent with no unsatisfied rows left is scheduled.
import { SqlStore, type Database } from '../store.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS queue_task_dependencies (
  required_task_id TEXT NOT NULL,
  dependent_task_id TEXT NOT NULL,
  require TEXT NOT NULL,
  satisfied INTEGER NOT NULL DEFAULT 0,
  expires INTEGER NOT NULL,
  PRIMARY KEY (required_task_id, dependent_task_id)
);
CREATE INDEX IF NOT EXISTS queue_task_dependencies_by_dependent ON queue_task_dependencies(dependent_task_id, satisfied);
CREATE INDEX IF NOT EXISTS queue_task_dependencies_by_expires ON queue_task_dependencies(expires);
`;

export class DependencyStore extends SqlStore {
  constructor(db: Database) {
    super(db, SCHEMA);
  }

  add(dependentTaskId: string, requiredTaskId: string, require: 'completed' | 'resolved', satisfied: boolean, expires: number): void {
    this.sql(`INSERT OR IGNORE INTO queue_task_dependencies (required_task_id, dependent_task_id, require, satisfied, expires)
      VALUES (?, ?, ?, ?, ?)`).run(requiredTaskId, dependentTaskId, require, satisfied ? 1 : 0, expires);
  }

  /** Marks the rows `taskId` satisfies by resolving as `resolution`; returns the dependents touched. */
  satisfy(requiredTaskId: string, resolution: 'completed' | 'failed' | 'exception'): string[] {
    const rows = (resolution === 'completed'
      ? this.sql('SELECT dependent_task_id FROM queue_task_dependencies WHERE required_task_id = ? AND satisfied = 0').all(requiredTaskId)
      : this.sql(`SELECT dependent_task_id FROM queue_task_dependencies WHERE required_task_id = ? AND satisfied = 0 AND require = 'resolved'`).all(requiredTaskId)
    ) as { dependent_task_id: string }[];
    const mark = this.sql('UPDATE queue_task_dependencies SET satisfied = 1 WHERE required_task_id = ? AND dependent_task_id = ?');
    for (const r of rows) mark.run(requiredTaskId, r.dependent_task_id);
    return rows.map((r) => r.dependent_task_id);
  }

  isBlocked(dependentTaskId: string): boolean {
    return this.sql('SELECT 1 FROM queue_task_dependencies WHERE dependent_task_id = ? AND satisfied = 0 LIMIT 1').get(dependentTaskId) !== undefined;
  }

  dependents(requiredTaskId: string, offset: number, limit: number): string[] {
    const rows = this.sql(`SELECT dependent_task_id FROM queue_task_dependencies WHERE required_task_id = ?
      ORDER BY dependent_task_id LIMIT ? OFFSET ?`).all(requiredTaskId, limit, offset) as { dependent_task_id: string }[];
    return rows.map((r) => r.dependent_task_id);
  }

  deleteExpired(now: number): number {
    return Number(this.sql('DELETE FROM queue_task_dependencies WHERE expires <= ?').run(now).changes);
  }

  deleteFor(dependentTaskId: string): void {
    this.sql('DELETE FROM queue_task_dependencies WHERE dependent_task_id = ?').run(dependentTaskId);
  }
}
