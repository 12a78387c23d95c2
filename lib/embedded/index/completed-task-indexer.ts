// Indexes completed tasks under their `index.<namespace>` routes, as the real index service
// does from the queue's task-completed messages: rank, data and expires come from
// `task.extra.index` when given, else rank 0, data {} and the task's own expiry.
import type { Database } from '../store.ts';
import type { WorkerLog } from '../../log/worker-log.ts';
import { subscribeTaskCompleted, type TaskResolvedEvent } from '../queue/events.ts';
import { NAMESPACE_PATTERN, type IndexStore } from './index-store.ts';

const ROUTE = /^index\.(.+)$/;

export function indexCompletedTasks(db: Database, index: IndexStore, log: WorkerLog): () => void {
  return subscribeTaskCompleted(db, (event: TaskResolvedEvent) => {
    try {
      indexTask(index, event, log);
    } catch (err) {
      log.error('index: failed to index a completed task', { taskId: event.taskId, error: (err as Error).stack });
    }
  });
}

function indexTask(index: IndexStore, { taskId, definition }: TaskResolvedEvent, log: WorkerLog): void {
  const namespaces = definition.routes
    .map((route) => ROUTE.exec(route)?.[1])
    .filter((ns): ns is string => ns !== undefined && NAMESPACE_PATTERN.test(ns));
  if (namespaces.length === 0) return;
  const options = (definition.extra?.index ?? {}) as { rank?: unknown; data?: unknown; expires?: unknown };
  const rank = options.rank ?? 0;
  const data = options.data ?? {};
  const expires = new Date(typeof options.expires === 'string' ? options.expires : definition.expires);
  if (typeof rank !== 'number' || !data || typeof data !== 'object' || Array.isArray(data) || Number.isNaN(expires.getTime())) {
    log.warn('index: task.extra.index is malformed (rank must be a number, data an object, expires a date); not indexed', { taskId });
    return;
  }
  for (const namespace of namespaces) {
    index.insert(namespace, { taskId, rank, data: data as Record<string, unknown>, expires });
  }
}
