// createTask: idempotent for an identical definition, 409 for a different one under the same
// taskId; a task with unresolved dependencies stays `unscheduled` until they are satisfied.
import { ApiError, conflict } from '../api/errors.ts';
import type { Handler } from '../api/service.ts';
import type { QueueCore, TaskChanges } from './queue-core.ts';
import type { TaskDefinition, TaskRecord } from './types.ts';
import { taskIdParam } from './request-params.ts';
import { definitionWithDefaults, creationScopeParams, checkTimestamps, canonicalJson } from './task-definition.ts';
import { taskStatus, taskState } from './task-status.ts';
import { schedule } from './run-transitions.ts';

function joinGroup(core: QueueCore, def: TaskDefinition): void {
  const outcome = core.groups.ensure(def.taskGroupId, def.schedulerId, Date.parse(def.expires));
  if (outcome === 'scheduler-conflict') {
    throw conflict(`Task group \`${def.taskGroupId}\` contains tasks with a schedulerId other than \`${def.schedulerId}\`. ` +
      'All tasks in the same task-group must have the same schedulerId.', { taskGroupId: def.taskGroupId, schedulerId: def.schedulerId });
  }
  if (outcome === 'sealed') {
    throw conflict(`Task group \`${def.taskGroupId}\` is sealed and does not accept new tasks.`, { taskGroupId: def.taskGroupId });
  }
}

/** Records the dependencies; returns whether the task may be scheduled now. */
function trackDependencies(core: QueueCore, taskId: string, def: TaskDefinition): boolean {
  const missing: string[] = [];
  const expiring: string[] = [];
  const satisfied = new Map<string, boolean>();
  for (const requiredId of def.dependencies) {
    if (requiredId === taskId) { satisfied.set(requiredId, false); continue; }
    const required = core.tasks.get(requiredId);
    if (!required) { missing.push(requiredId); continue; }
    if (Date.parse(def.deadline) > Date.parse(required.definition.expires)) { expiring.push(requiredId); continue; }
    const state = taskState(required);
    satisfied.set(requiredId, state === 'completed' ||
      (def.requires === 'all-resolved' && (state === 'failed' || state === 'exception')));
  }
  if (missing.length || expiring.length) {
    let message = '';
    if (missing.length) {
      message += '`task.dependencies` references non-existing tasks:\n' + missing.map((t) => ` * ${t}`).join('\n') +
        '\nAll taskIds in `task.dependencies` **must** exist before the task is created.\n';
    }
    if (expiring.length) {
      message += '`task.dependencies` references tasks that expire before `task.deadline`, which is not allowed:\n' +
        expiring.map((t) => ` * ${t}`).join('\n') +
        '\nAll taskIds in `task.dependencies` **must** have `task.expires` later than the `deadline` of this task.\n';
    }
    throw new ApiError('InputError', message, {
      dependencies: def.dependencies, missingTaskDependencies: missing, expiringTaskDependencies: expiring,
    });
  }
  const require = def.requires === 'all-resolved' ? 'resolved' : 'completed';
  for (const [requiredId, ok] of satisfied) core.dependencies.add(taskId, requiredId, require, ok, Date.parse(def.expires));
  return [...satisfied.values()].every(Boolean);
}

function create(core: QueueCore, tx: TaskChanges, taskId: string, def: TaskDefinition): TaskRecord {
  joinGroup(core, def);
  const existing = tx.load(taskId);
  if (existing) {
    if (canonicalJson(existing.definition) !== canonicalJson(def)) {
      throw conflict(`taskId \`${taskId}\` already used by another task.\nThis could be the result of faulty idempotency!`, { taskId });
    }
    return existing;
  }
  const record: TaskRecord = { taskId, definition: def, retriesLeft: def.retries, runs: [] };
  tx.insert(record);
  if (trackDependencies(core, taskId, def) && schedule(record, tx.now)) tx.save(record);
  return record;
}

export function createTaskHandler(core: QueueCore): Handler {
  return (req) => {
    const taskId = taskIdParam(req);
    const def = definitionWithDefaults(taskId, req.body);
    req.authorize(creationScopeParams(taskId, def));
    const now = Date.now();
    checkTimestamps(def, now);
    const record = core.change((tx) => create(core, tx, taskId, def), now);
    return { status: taskStatus(record) };
  };
}
