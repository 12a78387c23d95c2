// How a task's runs change, as pure functions on a stored task (no I/O). Each returns
// whether it changed anything; the caller persists the record. The rules are the real
// queue's: only the latest run can change, a retry adds a new pending run while retries
// remain, a task without runs gets one when it is scheduled, cancelled or out of time.
import type { TaskRecord, TaskRun, ReasonCreated, ReasonResolved } from './types.ts';
import { lastRun } from './task-status.ts';

/** The queue never creates more runs than this (retries are at most 49). */
export const MAX_RUNS = 50;

const iso = (ms: number) => new Date(ms).toJSON();

function addPendingRun(record: TaskRecord, reasonCreated: ReasonCreated, now: number): void {
  record.runs.push({ runId: record.runs.length, state: 'pending', reasonCreated, scheduled: iso(now) });
}

function isLatestIn(record: TaskRecord, runId: number, state: TaskRun['state']): TaskRun | undefined {
  const run = record.runs[runId];
  return run && runId === record.runs.length - 1 && run.state === state ? run : undefined;
}

/** Adds the first pending run to a task that has none. */
export function schedule(record: TaskRecord, now: number): boolean {
  if (record.runs.length > 0) return false;
  addPendingRun(record, 'scheduled', now);
  return true;
}

export function claimRun(record: TaskRecord, runId: number, worker: { workerGroup: string; workerId: string }, takenUntil: number, now: number): boolean {
  const run = isLatestIn(record, runId, 'pending');
  if (!run) return false;
  run.state = 'running';
  run.workerGroup = worker.workerGroup;
  run.workerId = worker.workerId;
  run.takenUntil = iso(takenUntil);
  run.started = iso(now);
  return true;
}

export function reclaimRun(record: TaskRecord, runId: number, takenUntil: number): boolean {
  const run = isLatestIn(record, runId, 'running');
  if (!run) return false;
  run.takenUntil = iso(takenUntil);
  return true;
}

/**
 * Resolves the latest, running run. With a retry reason and retries left, a new pending run
 * is added (the task stays unresolved).
 */
export function resolveRun(record: TaskRecord, runId: number, state: 'completed' | 'failed' | 'exception',
  reason: ReasonResolved, retryReason: ReasonCreated | undefined, now: number): boolean {
  const run = isLatestIn(record, runId, 'running');
  if (!run) return false;
  run.state = state;
  run.reasonResolved = reason;
  run.resolved = iso(now);
  if (retryReason && record.retriesLeft > 0) {
    record.retriesLeft -= 1;
    addPendingRun(record, retryReason, now);
  }
  return true;
}

/** A running run whose `takenUntil` has passed becomes exception/claim-expired (with a retry). */
export function expireClaim(record: TaskRecord, now: number): boolean {
  const run = lastRun(record);
  if (!run || run.state !== 'running' || !run.takenUntil || Date.parse(run.takenUntil) > now) return false;
  return resolveRun(record, run.runId, 'exception', 'claim-expired', 'retry', now);
}

/** Ends the latest pending or running run with `reason`; a task without runs gets one. */
function endUnresolved(record: TaskRecord, reason: 'deadline-exceeded' | 'canceled', now: number): boolean {
  const run = lastRun(record);
  if (!run) {
    record.runs.push({
      runId: 0, state: 'exception', reasonCreated: 'exception', reasonResolved: reason,
      scheduled: iso(now), resolved: iso(now),
    });
    return true;
  }
  if (run.state !== 'pending' && run.state !== 'running') return false;
  run.state = 'exception';
  run.reasonResolved = reason;
  run.resolved = iso(now);
  return true;
}

export function exceedDeadline(record: TaskRecord, now: number): boolean {
  if (Date.parse(record.definition.deadline) > now) return false;
  return endUnresolved(record, 'deadline-exceeded', now);
}

export function cancel(record: TaskRecord, now: number): boolean {
  return endUnresolved(record, 'canceled', now);
}

/** A resolved task gets a new pending run and its retries back. */
export function rerun(record: TaskRecord, now: number): boolean {
  const run = lastRun(record);
  if (run && (run.state === 'pending' || run.state === 'running')) return false;
  if (record.runs.length >= MAX_RUNS) return false;
  record.retriesLeft = record.definition.retries;
  addPendingRun(record, 'rerun', now);
  return true;
}

/** What time alone does to a task: its deadline passes, or its claim expires. */
export function applyTimeouts(record: TaskRecord, now: number): boolean {
  return exceedDeadline(record, now) || expireClaim(record, now);
}
