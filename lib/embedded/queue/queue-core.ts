// Every change to tasks goes through QueueCore.change(): one SQLite transaction in which
// tasks are loaded (time-driven transitions applied: deadline, claim expiry), changed and
// saved. Saving notices what happened to the task: a run became pending (wake claimWork
// waiters of its queue), or the task resolved (satisfy dependencies, schedule dependents,
// emit an event). Waking and events happen only after COMMIT.
import type { EventEmitter } from 'node:events';
import { transaction, type Database } from '../store.ts';
import type { WorkerLog } from '../../log/worker-log.ts';
import type { TaskRecord, RunState } from './types.ts';
import { TaskStore } from './task-store.ts';
import { DependencyStore } from './dependency-store.ts';
import { TaskGroupStore } from './task-group-store.ts';
import { WorkWaiters } from './work-waiters.ts';
import { taskEventsFor, type TaskEventName, type TaskResolvedEvent } from './events.ts';
import { taskStatus, lastRun } from './task-status.ts';
import { applyTimeouts, schedule } from './run-transitions.ts';

interface Snapshot { runs: number; lastState: RunState | undefined }

const snapshotOf = (record: TaskRecord): Snapshot => ({ runs: record.runs.length, lastState: lastRun(record)?.state });

export class QueueCore {
  readonly db: Database;
  readonly tasks: TaskStore;
  readonly dependencies: DependencyStore;
  readonly groups: TaskGroupStore;
  readonly waiters = new WorkWaiters();
  readonly events: EventEmitter;
  readonly log: WorkerLog;

  constructor(db: Database, log: WorkerLog) {
    this.db = db;
    this.log = log;
    this.tasks = new TaskStore(db);
    this.dependencies = new DependencyStore(db);
    this.groups = new TaskGroupStore(db);
    this.events = taskEventsFor(db);
  }

  /** Runs fn in one transaction; its effects (wake-ups, events) follow the commit. */
  change<T>(fn: (tx: TaskChanges) => T, now = Date.now()): T {
    const tx = new TaskChanges(this, now);
    const result = transaction(this.db, () => fn(tx));
    tx.afterCommit();
    return result;
  }
}

export class TaskChanges {
  readonly now: number;
  private readonly core: QueueCore;
  private readonly snapshots = new Map<string, Snapshot>();
  private readonly wake = new Set<string>();
  private readonly emitted: [TaskEventName, TaskResolvedEvent][] = [];

  constructor(core: QueueCore, now: number) {
    this.core = core;
    this.now = now;
  }

  /** Loads a task for change, with what its deadline and claim expiry imply already applied. */
  load(taskId: string): TaskRecord | undefined {
    const record = this.core.tasks.get(taskId);
    if (!record) return undefined;
    this.snapshots.set(taskId, snapshotOf(record));
    if (applyTimeouts(record, this.now)) this.save(record);
    return record;
  }

  insert(record: TaskRecord): void {
    this.core.tasks.insert(record);
    this.snapshots.set(record.taskId, { runs: 0, lastState: undefined });
    this.noticeChanges(record);
  }

  save(record: TaskRecord): void {
    this.core.tasks.update(record);
    this.noticeChanges(record);
  }

  private noticeChanges(record: TaskRecord): void {
    const before = this.snapshots.get(record.taskId) ?? { runs: -1, lastState: undefined };
    const after = snapshotOf(record);
    this.snapshots.set(record.taskId, after);
    if (before.runs === after.runs && before.lastState === after.lastState) return;
    const run = lastRun(record);
    if (!run) return;
    if (run.state === 'pending') {
      this.wake.add(record.definition.taskQueueId);
      this.emit('pending', record, run.runId);
    } else if (run.state === 'completed' || run.state === 'failed' || run.state === 'exception') {
      this.emit(run.state, record, run.runId);
      this.scheduleDependents(record.taskId, run.state);
    }
  }

  private emit(name: TaskEventName, record: TaskRecord, runId: number): void {
    this.emitted.push([name, {
      taskId: record.taskId, runId,
      definition: structuredClone(record.definition), status: taskStatus(record),
    }]);
  }

  private scheduleDependents(taskId: string, resolution: 'completed' | 'failed' | 'exception'): void {
    for (const dependentId of this.core.dependencies.satisfy(taskId, resolution)) {
      if (this.core.dependencies.isBlocked(dependentId)) continue;
      const dependent = this.load(dependentId);
      if (!dependent || Date.parse(dependent.definition.deadline) <= this.now) continue;
      if (schedule(dependent, this.now)) this.save(dependent);
    }
  }

  afterCommit(): void {
    for (const q of this.wake) this.core.waiters.wake(q);
    for (const [name, event] of this.emitted) {
      try {
        this.core.events.emit(name, event);
      } catch (err) {
        this.core.log.error('queue event listener failed', { event: name, taskId: event.taskId, error: (err as Error)?.stack ?? String(err) });
      }
    }
  }
}
