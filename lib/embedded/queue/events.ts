// Task events of one embedded deployment, for other embedded services (the index service
// indexes `index.<namespace>` routes when a task completes). One emitter per database, so
// several deployments in one process stay apart. Events are emitted after the change is
// committed; listeners must not throw (errors are caught and logged by the emitter's owner).
//
//   taskEventsFor(ctx.db).on('completed', (e: TaskResolvedEvent) => ...)
//
// Events: 'completed', 'failed', 'exception' (the task is resolved: no retry follows),
// 'pending' (a run became pending).
import { EventEmitter } from 'node:events';
import type { Database } from '../store.ts';
import type { TaskDefinition, TaskStatus } from './types.ts';

export interface TaskResolvedEvent {
  taskId: string;
  runId: number;
  definition: TaskDefinition;
  status: TaskStatus;
}

export type TaskEventName = 'completed' | 'failed' | 'exception' | 'pending';

const emitters = new WeakMap<Database, EventEmitter>();

export function taskEventsFor(db: Database): EventEmitter {
  let emitter = emitters.get(db);
  if (!emitter) {
    emitter = new EventEmitter();
    emitter.setMaxListeners(0);
    emitters.set(db, emitter);
  }
  return emitter;
}

/** Subscribes to completed tasks; returns the function that unsubscribes. */
export function subscribeTaskCompleted(db: Database, listener: (event: TaskResolvedEvent) => void): () => void {
  const emitter = taskEventsFor(db);
  emitter.on('completed', listener);
  return () => { emitter.off('completed', listener); };
}
