// Reading tasks: definition, status, batches of them, task groups, dependents, and what is
// pending or claimed in a task queue.
import { ApiError, notFound } from '../api/errors.ts';
import type { Handler } from '../api/service.ts';
import type { QueueCore } from './queue-core.ts';
import type { TaskRecord } from './types.ts';
import { splitTaskQueueId } from './types.ts';
import { taskIdParam, taskQueueIdParam, pageOf, withToken } from './request-params.ts';
import { taskStatus, lastRun } from './task-status.ts';

const definitionAndStatus = (r: TaskRecord) => ({ status: taskStatus(r), task: r.definition });

export function taskListingHandlers(core: QueueCore): Record<string, Handler> {
  function mustGet(taskId: string): TaskRecord {
    const record = core.tasks.get(taskId);
    if (!record) {
      throw new ApiError('ResourceNotFound', `\`${taskId}\` does not correspond to a task that exists.\nAre you sure this task has already been submitted?`, { taskId });
    }
    return record;
  }

  /** Existing tasks among `taskIds`, one page of them. */
  function batch(req: Parameters<Handler>[0]): { found: TaskRecord[]; page: ReturnType<typeof pageOf>; count: number } {
    const taskIds = (req.body as { taskIds?: string[] }).taskIds ?? [];
    req.authorize({ taskIds });
    const page = pageOf(req);
    const slice = taskIds.slice(page.offset, page.offset + page.limit);
    const found = slice.map((id) => core.tasks.get(id)).filter((r): r is TaskRecord => r !== undefined);
    return { found, page, count: slice.length };
  }

  return {
    task: (req) => mustGet(taskIdParam(req)).definition,
    status: (req) => ({ status: taskStatus(mustGet(taskIdParam(req))) }),

    tasks: (req) => {
      const { found, page, count } = batch(req);
      return withToken({ tasks: found.map((r) => ({ taskId: r.taskId, task: r.definition })) }, page, count);
    },
    statuses: (req) => {
      const { found, page, count } = batch(req);
      return withToken({ statuses: found.map((r) => ({ taskId: r.taskId, status: taskStatus(r) })) }, page, count);
    },

    getTaskGroup: (req) => {
      const taskGroupId = taskIdParam(req, 'taskGroupId');
      const group = core.groups.get(taskGroupId);
      if (!group) throw notFound(`Task group \`${taskGroupId}\``);
      return group;
    },
    listTaskGroup: (req) => {
      const taskGroupId = taskIdParam(req, 'taskGroupId');
      const group = core.groups.get(taskGroupId);
      if (!group) throw notFound(`Task group \`${taskGroupId}\``);
      const page = pageOf(req);
      const tasks = core.tasks.listGroup(taskGroupId, page.offset, page.limit);
      return withToken({ ...group, tasks: tasks.map(definitionAndStatus) }, page, tasks.length);
    },

    listDependentTasks: (req) => {
      const taskId = taskIdParam(req);
      mustGet(taskId);
      const page = pageOf(req);
      const ids = core.dependencies.dependents(taskId, page.offset, page.limit);
      const tasks = ids.map((id) => core.tasks.get(id)).filter((r): r is TaskRecord => r !== undefined);
      return withToken({ taskId, tasks: tasks.map(definitionAndStatus) }, page, ids.length);
    },

    pendingTasks: (req) => {
      const taskQueueId = taskQueueIdParam(req);
      return { ...splitTaskQueueId(taskQueueId), taskQueueId, pendingTasks: core.tasks.countInState(taskQueueId, 'pending') };
    },
    taskQueueCounts: (req) => {
      const taskQueueId = taskQueueIdParam(req);
      return {
        ...splitTaskQueueId(taskQueueId), taskQueueId,
        pendingTasks: core.tasks.countInState(taskQueueId, 'pending'),
        claimedTasks: core.tasks.countInState(taskQueueId, 'running'),
      };
    },
    listPendingTasks: (req) => {
      const taskQueueId = taskQueueIdParam(req);
      const page = pageOf(req);
      const records = core.tasks.listInState(taskQueueId, 'pending', page.offset, page.limit);
      return withToken({
        tasks: records.map((r) => {
          const run = lastRun(r)!;
          return { taskId: r.taskId, runId: run.runId, task: r.definition, inserted: run.scheduled };
        }),
      }, page, records.length);
    },
    listClaimedTasks: (req) => {
      const taskQueueId = taskQueueIdParam(req);
      const page = pageOf(req);
      const records = core.tasks.listInState(taskQueueId, 'running', page.offset, page.limit);
      return withToken({
        tasks: records.map((r) => {
          const run = lastRun(r)!;
          return {
            taskId: r.taskId, runId: run.runId, workerGroup: run.workerGroup!, workerId: run.workerId!,
            claimed: run.started!, task: r.definition,
          };
        }),
      }, page, records.length);
    },
  };
}
