// Resolving runs and tasks: reportCompleted / reportFailed / reportException by the worker,
// cancelTask, rerunTask and scheduleTask by the task's owner. Conflicts are 409s as the real
// queue gives them; reporting the same resolution twice succeeds.
import { ApiError, conflict, notFound } from '../api/errors.ts';
import type { ApiRequest, Handler } from '../api/service.ts';
import type { QueueCore, TaskChanges } from './queue-core.ts';
import type { ReasonCreated, ReasonResolved, TaskRecord, TaskStatus } from './types.ts';
import { taskIdParam, runIdParam } from './request-params.ts';
import { taskStatus, taskState } from './task-status.ts';
import { resolveRun, cancel, rerun, schedule, MAX_RUNS } from './run-transitions.ts';

/** Exception reasons that give the task a new run while retries remain. */
const RETRY_REASONS: Partial<Record<ReasonResolved, ReasonCreated>> = {
  'worker-shutdown': 'retry',
  'intermittent-task': 'task-retry',
};

const notResolvable = (taskId: string, runId: number) =>
  conflict(`Run ${runId} on task \`${taskId}\` is resolved or not running.`, { taskId, runId });

function throwIfError<T>(outcome: T | ApiError): T {
  if (outcome instanceof ApiError) throw outcome;
  return outcome;
}

export function resolutionHandlers(core: QueueCore): Record<string, Handler> {
  function resolve(req: ApiRequest, target: 'completed' | 'failed' | 'exception', reason: ReasonResolved): { status: TaskStatus } {
    const taskId = taskIdParam(req);
    const runId = runIdParam(req);
    const status = throwIfError(core.change((tx) => {
      const record = tx.load(taskId);
      if (!record) return notFound(`Task \`${taskId}\``);
      const run = record.runs[runId];
      if (!run) return notFound(`Run ${runId} of task \`${taskId}\``);
      if (run.state === 'running') {
        resolveRun(record, runId, target, reason, target === 'exception' ? RETRY_REASONS[reason] : undefined, tx.now);
        tx.save(record);
        return taskStatus(record);
      }
      // Idempotent when this run is already resolved the same way and is still the latest
      // (for exceptions: or was followed by just the one retry run).
      const newerRuns = record.runs.length - 1 - runId;
      const recent = target === 'exception' ? newerRuns <= 1 : newerRuns === 0;
      if (recent && run.state === target && run.reasonResolved === reason) return taskStatus(record);
      return notResolvable(taskId, runId);
    }));
    return { status };
  }

  /** Loads a task and authorizes the owner-side scope expression with its identifiers. */
  function ownerChange(req: ApiRequest, verb: string, fn: (record: TaskRecord, tx: TaskChanges) => ApiError | undefined): { status: TaskStatus } {
    const taskId = taskIdParam(req);
    const found = core.tasks.get(taskId);
    if (!found) throw notFound(`Task \`${taskId}\``);
    const { schedulerId, taskGroupId, projectId, deadline } = found.definition;
    req.authorize({ taskId, schedulerId, taskGroupId, projectId });
    if (Date.parse(deadline) <= Date.now()) {
      throw conflict(`Task \`${taskId}\` can't be ${verb} past its deadline of ${deadline}.`, { taskId, deadline });
    }
    const status = throwIfError(core.change((tx) => {
      const record = tx.load(taskId);
      if (!record) return notFound(`Task \`${taskId}\``);
      return fn(record, tx) ?? taskStatus(record);
    }));
    return { status };
  }

  return {
    reportCompleted: (req) => resolve(req, 'completed', 'completed'),
    reportFailed: (req) => resolve(req, 'failed', 'failed'),
    reportException: (req) => resolve(req, 'exception', (req.body as { reason: ReasonResolved }).reason),

    /** Unscheduled, pending or running -> exception/canceled; otherwise the status as it is. */
    cancelTask: (req) => ownerChange(req, 'canceled', (record, tx) => {
      if (cancel(record, tx.now)) tx.save(record);
      return undefined;
    }),

    /** A resolved task gets a new run; a pending or running one is left as it is. */
    rerunTask: (req) => ownerChange(req, 'rescheduled', (record, tx) => {
      if (rerun(record, tx.now)) { tx.save(record); return undefined; }
      const state = taskState(record);
      if (state !== 'pending' && state !== 'running' && record.runs.length >= MAX_RUNS) {
        return conflict(`Maximum number of runs reached (${MAX_RUNS}).`, { taskId: record.taskId });
      }
      return undefined;
    }),

    /** Schedules an unscheduled task whatever its dependencies; idempotent otherwise. */
    scheduleTask: (req) => ownerChange(req, 'scheduled', (record, tx) => {
      if (schedule(record, tx.now)) tx.save(record);
      return undefined;
    }),
  };
}
