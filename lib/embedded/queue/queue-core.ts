// Every change to tasks goes through QueueCore.change(): one SQLite transaction in which
// tasks are loaded (time-driven transitions applied: deadline, claim expiry), changed and
// saved. Saving notices what happened to the task: a run became pending (wake claimWork
// waiters of its queue), or the task resolved (satisfy dependencies, schedule dependents,
// emit an event). Waking, events and the Pulse messages of every run whose state changed
// (pulse.ts) happen only after COMMIT.
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
import { queuePulseFor, type Exchange, type PublishMode, type QueuePulse } from './pulse.ts';

interface Snapshot { runs: number; lastState: RunState | undefined; states: RunState[] }

const snapshotOf = (record: TaskRecord): Snapshot => ({
  runs: record.runs.length, lastState: lastRun(record)?.state, states: record.runs.map((r) => r.state),
});

/** The exchange a run's new state is announced on, and whether a failed message fails the request (as the real queue). */
const RUN_MESSAGES: Partial<Record<RunState, [Exchange, PublishMode]>> = {
  pending: ['task-pending', 'best-effort'],
  running: ['task-running', 'must'],
  completed: ['task-completed', 'must'],
  failed: ['task-failed', 'must'],
  exception: ['task-exception', 'best-effort'],
};

export class QueueCore {
  readonly db: Database;
  readonly tasks: TaskStore;
  readonly dependencies: DependencyStore;
  readonly groups: TaskGroupStore;
  readonly waiters = new WorkWaiters();
  readonly events: EventEmitter;
  readonly pulse: QueuePulse;
  readonly log: WorkerLog;

  constructor(db: Database, log: WorkerLog, rootUrl: () => string = () => '') {
    this.db = db;
    this.log = log;
    this.tasks = new TaskStore(db);
    this.dependencies = new DependencyStore(db);
    this.groups = new TaskGroupStore(db);
    this.events = taskEventsFor(db);
    this.pulse = queuePulseFor(db, rootUrl, log);
  }

  /**
   * Runs fn in one transaction; its effects (wake-ups, events, messages) follow the commit. A
   * message that fails its schema then throws (500), unless `messages` is 'best-effort' (the
   * time-driven resolvers, which only log).
   */
  change<T>(fn: (tx: TaskChanges) => T, now = Date.now(), messages: PublishMode = 'must'): T {
    const tx = new TaskChanges(this, now);
    const result = transaction(this.db, () => fn(tx));
    tx.afterCommit(messages);
    return result;
  }
}

export class TaskChanges {
  readonly now: number;
  private readonly core: QueueCore;
  private readonly snapshots = new Map<string, Snapshot>();
  private readonly wake = new Set<string>();
  private readonly emitted: [TaskEventName, TaskResolvedEvent][] = [];
  private readonly messages: [Exchange, Record<string, unknown>, string[], PublishMode][] = [];

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
    this.snapshots.set(record.taskId, { runs: 0, lastState: undefined, states: [] });
    // As the real queue: the task as defined, before any run was scheduled (best-effort).
    const defined = { ...taskStatus(record), state: 'unscheduled', runs: [] };
    this.messages.push(['task-defined', { status: defined, task: { tags: record.definition.tags } }, record.definition.routes, 'best-effort']);
    this.noticeChanges(record);
  }

  save(record: TaskRecord): void {
    this.core.tasks.update(record);
    this.noticeChanges(record);
  }

  private noticeChanges(record: TaskRecord): void {
    const before = this.snapshots.get(record.taskId) ?? { runs: -1, lastState: undefined, states: [] };
    const after = snapshotOf(record);
    this.snapshots.set(record.taskId, after);
    this.announceRuns(record, before.states, after.states);
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

  /** The message of each run whose state changed, in run order (an exception, then its retry's pending). */
  private announceRuns(record: TaskRecord, before: RunState[], after: RunState[]): void {
    let status: ReturnType<typeof taskStatus> | undefined;
    for (let runId = 0; runId < after.length; runId++) {
      if (before[runId] === after[runId]) continue;
      const announced = RUN_MESSAGES[after[runId]!];
      if (!announced) continue;
      status ??= taskStatus(record);
      const run = record.runs[runId]!;
      const message: Record<string, unknown> = { status, runId, task: { tags: record.definition.tags } };
      if (announced[0] !== 'task-pending') Object.assign(message, { workerGroup: run.workerGroup, workerId: run.workerId });
      if (announced[0] === 'task-running') message.takenUntil = run.takenUntil;
      this.messages.push([announced[0], JSON.parse(JSON.stringify(message)), record.definition.routes, announced[1]]);
    }
  }

  private emit(name: TaskEventName, record: TaskRecord, runId: number): void {
    this.emitted.push([name, {
      taskId: record.taskId, runId,
      definition: JSON.parse(JSON.stringify(record.definition)), status: taskStatus(record), // JSON, and structuredClone recurses less deeply than a body may nest
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

  afterCommit(messages: PublishMode): void {
    for (const q of this.wake) this.core.waiters.wake(q);
    let failed: unknown;
    for (const [exchange, message, routes, mode] of this.messages) {
      try {
        this.core.pulse.publish(exchange, message, routes, messages === 'best-effort' ? messages : mode);
      } catch (err) {
        failed ??= err;
      }
    }
    for (const [name, event] of this.emitted) {
      try {
        this.core.events.emit(name, event);
      } catch (err) {
        this.core.log.error('queue event listener failed', { event: name, taskId: event.taskId, error: (err as Error)?.stack ?? String(err) });
      }
    }
    if (failed) throw failed;
  }
}
