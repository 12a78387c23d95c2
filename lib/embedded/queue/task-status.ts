// The task status structure derived from a stored task: the task's state is the state of
// its latest run, or `unscheduled` while it has none.
import type { TaskRecord, TaskState, TaskStatus, TaskRun } from './types.ts';

export function taskState(record: Pick<TaskRecord, 'runs'>): TaskState {
  const last = record.runs.at(-1);
  return last ? last.state : 'unscheduled';
}

export function isResolvedState(state: TaskState): state is 'completed' | 'failed' | 'exception' {
  return state === 'completed' || state === 'failed' || state === 'exception';
}

export function lastRun(record: Pick<TaskRecord, 'runs'>): TaskRun | undefined {
  return record.runs.at(-1);
}

/** Property order as the real queue writes it. */
function runForStatus(run: TaskRun): TaskRun {
  const out: TaskRun = { runId: run.runId, state: run.state, reasonCreated: run.reasonCreated, scheduled: run.scheduled };
  if (run.reasonResolved !== undefined) out.reasonResolved = run.reasonResolved;
  if (run.workerGroup !== undefined) out.workerGroup = run.workerGroup;
  if (run.workerId !== undefined) out.workerId = run.workerId;
  if (run.takenUntil !== undefined) out.takenUntil = run.takenUntil;
  if (run.started !== undefined) out.started = run.started;
  if (run.resolved !== undefined) out.resolved = run.resolved;
  return out;
}

export function taskStatus(record: TaskRecord): TaskStatus {
  const d = record.definition;
  return {
    taskId: record.taskId,
    provisionerId: d.provisionerId,
    workerType: d.workerType,
    taskQueueId: d.taskQueueId,
    schedulerId: d.schedulerId,
    projectId: d.projectId,
    taskGroupId: d.taskGroupId,
    priority: d.priority,
    deadline: d.deadline,
    expires: d.expires,
    retriesLeft: record.retriesLeft,
    state: taskState(record),
    runs: record.runs.map(runForStatus),
  };
}
