// Changing a task group as a whole: sealing it (no new tasks) and cancelling every task in it
// that is not resolved yet.
import { notFound } from '../api/errors.ts';
import type { ApiRequest, Handler } from '../api/service.ts';
import type { QueueCore } from './queue-core.ts';
import type { TaskGroup } from './task-group-store.ts';
import { taskIdParam } from './request-params.ts';
import { cancel } from './run-transitions.ts';

export function taskGroupHandlers(core: QueueCore): Record<string, Handler> {
  function authorizedGroup(req: ApiRequest): TaskGroup {
    const taskGroupId = taskIdParam(req, 'taskGroupId');
    const group = core.groups.get(taskGroupId);
    if (!group) throw notFound(`Task group \`${taskGroupId}\``);
    req.authorize({ taskGroupId, schedulerId: group.schedulerId });
    return group;
  }

  return {
    sealTaskGroup: (req) => {
      const group = authorizedGroup(req);
      core.change((tx) => core.groups.seal(group.taskGroupId, tx.now));
      return core.groups.get(group.taskGroupId);
    },

    cancelTaskGroup: (req) => {
      const { taskGroupId } = authorizedGroup(req);
      const taskIds = core.change((tx) => {
        const cancelled: string[] = [];
        for (const taskId of core.tasks.unresolvedInGroup(taskGroupId)) {
          const record = tx.load(taskId);
          if (record && cancel(record, tx.now)) { tx.save(record); cancelled.push(taskId); }
        }
        return cancelled;
      });
      return { taskGroupId, taskGroupSize: core.tasks.countGroup(taskGroupId), cancelledCount: taskIds.length, taskIds };
    },
  };
}
