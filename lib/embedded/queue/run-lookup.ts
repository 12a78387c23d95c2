// What the artifacts part of the queue may know about tasks: a task's stored definition
// (with defaults) and its current status.
import type { TaskDefinition, TaskStatus } from './types.ts';
import type { TaskStore } from './task-store.ts';
import { taskStatus } from './task-status.ts';

export type { TaskDefinition, TaskStatus, TaskRun } from './types.ts';

export interface RunLookup {
  /** The task definition (as stored, with defaults) and status, or undefined. */
  task(taskId: string): { definition: TaskDefinition; status: TaskStatus } | undefined;
}

export function runLookup(tasks: TaskStore): RunLookup {
  return {
    task(taskId) {
      const record = tasks.get(taskId);
      return record ? { definition: record.definition, status: taskStatus(record) } : undefined;
    },
  };
}
