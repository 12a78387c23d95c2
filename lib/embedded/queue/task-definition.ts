// A createTask request turned into the stored task definition: task queue identifiers
// reconciled (taskQueueId or the legacy provisionerId + workerType), defaults filled in,
// timestamps checked and written the one way the queue stores them.
import { ApiError } from '../api/errors.ts';
import { splitTaskQueueId, type TaskDefinition, type Priority } from './types.ts';

const DRIFT_MS = 15 * 60 * 1000;
const MAX_DEADLINE_MS = 5 * 24 * 3600 * 1000;

const inputError = (message: string, details: Record<string, unknown> = {}) => new ApiError('InputError', message, details);

/** taskQueueId, provisionerId and workerType of a request; all three, consistent. */
export function taskQueueOf(body: Record<string, unknown>): { taskQueueId: string; provisionerId: string; workerType: string } {
  const { provisionerId, workerType, taskQueueId } = body as { provisionerId?: string; workerType?: string; taskQueueId?: string };
  if (provisionerId && workerType) {
    const joined = `${provisionerId}/${workerType}`;
    if (taskQueueId && taskQueueId !== joined) {
      throw inputError('taskQueueId must match "provisionerId/workerType"', { provisionerId, workerType, taskQueueId });
    }
    return { taskQueueId: joined, provisionerId, workerType };
  }
  if (taskQueueId) return { taskQueueId, ...splitTaskQueueId(taskQueueId) };
  throw inputError('at least a provisionerId and a workerType or a taskQueueId must be provided');
}

/** The scope-template parameters createTask is authorized with. */
export function creationScopeParams(taskId: string, def: TaskDefinition): Record<string, unknown> {
  const priorities = ['highest', 'very-high', 'high', 'medium', 'low', 'very-low', 'lowest'];
  return {
    taskId,
    priorities: priorities.slice(0, priorities.indexOf(def.priority) + 1),
    routes: def.routes,
    scopes: def.scopes,
    schedulerId: def.schedulerId,
    projectId: def.projectId,
    taskGroupId: def.taskGroupId,
    provisionerId: def.provisionerId,
    workerType: def.workerType,
    taskQueueId: def.taskQueueId,
  };
}

/** The definition with defaults (before timestamps are checked, which happens after authorization). */
export function definitionWithDefaults(taskId: string, body: Record<string, any>): TaskDefinition {
  const queue = taskQueueOf(body);
  return {
    provisionerId: queue.provisionerId,
    workerType: queue.workerType,
    taskQueueId: queue.taskQueueId,
    schedulerId: body.schedulerId ?? '-',
    projectId: body.projectId || 'none',
    taskGroupId: body.taskGroupId ?? taskId,
    dependencies: body.dependencies ?? [],
    requires: body.requires ?? 'all-completed',
    routes: body.routes ?? [],
    priority: (body.priority ?? 'lowest') as Priority,
    retries: body.retries ?? 5,
    created: body.created,
    deadline: body.deadline,
    expires: body.expires,
    scopes: body.scopes ?? [],
    payload: body.payload,
    metadata: body.metadata,
    tags: body.tags ?? {},
    extra: body.extra ?? {},
  };
}

/** Checks created/deadline/expires against now, defaults expires, and normalizes the three. */
export function checkTimestamps(def: TaskDefinition, now: number): void {
  const created = Date.parse(def.created);
  const deadline = Date.parse(def.deadline);
  if (created < now - DRIFT_MS) throw inputError('`created` cannot be in the past (max 15min drift)', { created: def.created });
  if (created > now + DRIFT_MS) throw inputError('`created` cannot be in the future (max 15min drift)', { created: def.created });
  if (created > deadline) throw inputError('`deadline` cannot be earlier than `created`', { created: def.created, deadline: def.deadline });
  if (deadline < now) throw inputError('`deadline` cannot be in the past', { deadline: def.deadline });
  if (deadline - now > MAX_DEADLINE_MS + DRIFT_MS) {
    throw inputError('`deadline` cannot be more than 5 days into the future', { deadline: def.deadline });
  }
  if (!def.expires) {
    const expires = new Date(deadline);
    expires.setUTCFullYear(expires.getUTCFullYear() + 1);
    def.expires = expires.toJSON();
  }
  if (deadline > Date.parse(def.expires)) {
    throw inputError('`expires` cannot be before `deadline`', { deadline: def.deadline, expires: def.expires });
  }
  def.created = new Date(created).toJSON();
  def.deadline = new Date(deadline).toJSON();
  def.expires = new Date(Date.parse(def.expires)).toJSON();
  if (def.scopes.some((s) => s.endsWith('**'))) throw inputError('scopes must not end with `**`');
}

/** JSON with object keys sorted: two definitions are the same task when these are equal. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      return Object.fromEntries(Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]]));
    }
    return v;
  });
}
