// Plain typed shapes of the queue's data, as the official schemas define them
// (schemas/queue/v1/task.json, task-status.json).

export const PRIORITIES = ['highest', 'very-high', 'high', 'medium', 'low', 'very-low', 'lowest'] as const;
export type Priority = (typeof PRIORITIES)[number];

export type RunState = 'pending' | 'running' | 'completed' | 'failed' | 'exception';
export type TaskState = 'unscheduled' | RunState;

export type ReasonCreated = 'scheduled' | 'retry' | 'task-retry' | 'rerun' | 'exception';
export type ReasonResolved =
  | 'completed' | 'failed' | 'deadline-exceeded' | 'canceled' | 'claim-expired' | 'worker-shutdown'
  | 'malformed-payload' | 'resource-unavailable' | 'internal-error' | 'intermittent-task' | 'superseded';

export interface TaskMetadata {
  name: string;
  description: string;
  owner: string;
  source: string;
}

/** A task definition as stored and returned by `queue.task` (all defaults filled in). */
export interface TaskDefinition {
  provisionerId: string;
  workerType: string;
  taskQueueId: string;
  schedulerId: string;
  projectId: string;
  taskGroupId: string;
  dependencies: string[];
  requires: 'all-completed' | 'all-resolved';
  routes: string[];
  priority: Priority;
  retries: number;
  created: string;
  deadline: string;
  expires: string;
  scopes: string[];
  payload: Record<string, unknown>;
  metadata: TaskMetadata;
  tags: Record<string, string>;
  extra: Record<string, unknown>;
}

export interface TaskRun {
  runId: number;
  state: RunState;
  reasonCreated: ReasonCreated;
  reasonResolved?: ReasonResolved;
  workerGroup?: string;
  workerId?: string;
  takenUntil?: string;
  scheduled: string;
  started?: string;
  resolved?: string;
}

/** The task status structure (task-status.json). */
export interface TaskStatus {
  taskId: string;
  provisionerId: string;
  workerType: string;
  taskQueueId: string;
  schedulerId: string;
  projectId: string;
  taskGroupId: string;
  priority: Priority;
  deadline: string;
  expires: string;
  retriesLeft: number;
  state: TaskState;
  runs: TaskRun[];
}

/** What the queue keeps per task: its definition plus the mutable part of its status. */
export interface TaskRecord {
  taskId: string;
  definition: TaskDefinition;
  retriesLeft: number;
  runs: TaskRun[];
}

export function priorityRank(priority: Priority): number {
  return PRIORITIES.indexOf(priority);
}

/** "proj/type" -> {provisionerId, workerType}. */
export function splitTaskQueueId(taskQueueId: string): { provisionerId: string; workerType: string } {
  const i = taskQueueId.indexOf('/');
  return { provisionerId: taskQueueId.slice(0, i), workerType: taskQueueId.slice(i + 1) };
}
