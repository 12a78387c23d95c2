// How a task run ends, and reporting that to the queue exactly once.
import type { WorkerLog } from '../log/worker-log.ts';
import { statusCodeOf } from '../retry/with-retries.ts';
import type { TaskClaim } from '../queue/task-claim.ts';

export type ExceptionReason = 'malformed-payload' | 'internal-error' | 'worker-shutdown' | 'intermittent-task' | 'resource-unavailable' | 'superseded';

export type Outcome =
  | { kind: 'completed' }
  | { kind: 'failed' }
  | { kind: 'exception'; reason: ExceptionReason }
  /** Cancelled (or the claim was lost to the queue): the run is already resolved; report nothing. */
  | { kind: 'cancelled' };

export const INTERNAL_ERROR: Outcome = { kind: 'exception', reason: 'internal-error' };
export const MALFORMED_PAYLOAD: Outcome = { kind: 'exception', reason: 'malformed-payload' };
/** Not the task's doing, and the queue reruns it (the worker stops, the engine went away). */
export const WORKER_SHUTDOWN: Outcome = { kind: 'exception', reason: 'worker-shutdown' };

/** Why a run was interrupted from outside its own stages. */
export type Interrupt =
  | { kind: 'cancel'; message: string }
  | { kind: 'shutdown' }
  | { kind: 'lost'; message: string };

/** The task log line that says why a run was interrupted. */
export function interruptLine(reason: Interrupt): string {
  if (reason.kind === 'cancel') return reason.message;
  if (reason.kind === 'shutdown') return 'Task has been aborted prematurely. Reason: worker-shutdown';
  return `Task has been aborted prematurely. Reason: ${reason.message}`;
}

/**
 * What an interruption makes of the outcome: a cancelled run is not reported; a shutdown
 * before the container exited on its own reruns the task; a lost claim is internal-error.
 * Once the container exited on its own its result stands (a claim lost while artifacts were
 * being collected has already made the run internal-error).
 */
export function applyInterrupt(outcome: Outcome, reason: Interrupt | undefined, exitedOnItsOwn: boolean): Outcome {
  if (!reason) return outcome;
  if (reason.kind === 'cancel') return { kind: 'cancelled' };
  if (exitedOnItsOwn) return outcome;
  if (reason.kind === 'shutdown') return { kind: 'exception', reason: 'worker-shutdown' };
  return INTERNAL_ERROR;
}

/** Stage 6's rule: exit 0 completes; a status in onExitStatus.retry asks the queue for a rerun; anything else fails. */
export function exitOutcome(result: { exitCode: number; timedOut: boolean; startError?: string }, retry: readonly number[]): Outcome {
  if (result.exitCode === 0 && !result.timedOut && !result.startError) return { kind: 'completed' };
  if (!result.timedOut && !result.startError && retry.includes(result.exitCode)) return { kind: 'exception', reason: 'intermittent-task' };
  return { kind: 'failed' };
}

/**
 * Whether a superseding task's result stands for the tasks it superseded (they are resolved
 * superseded): not when it was cancelled, shut down or stopped by a worker error.
 */
export function coversSuperseded(o: Outcome): boolean {
  if (o.kind === 'cancelled') return false;
  return o.kind !== 'exception' || (o.reason !== 'worker-shutdown' && o.reason !== 'internal-error');
}

export function describeOutcome(o: Outcome): string {
  return o.kind === 'exception' ? `exception/${o.reason}` : o.kind;
}

/** Reports the outcome; a 409 means someone else resolved the run (e.g. it was cancelled). */
export async function reportOutcome(claim: TaskClaim, outcome: Outcome, log: WorkerLog): Promise<void> {
  const ids = { taskId: claim.taskId, runId: claim.runId };
  if (outcome.kind === 'cancelled') {
    log.info('task resolved', { ...ids, taskState: 'cancelled', note: 'resolved by the queue, nothing reported' });
    return;
  }
  const queue = claim.queue();
  try {
    if (outcome.kind === 'completed') await queue.reportCompleted(claim.taskId, claim.runId);
    else if (outcome.kind === 'failed') await queue.reportFailed(claim.taskId, claim.runId);
    else await queue.reportException(claim.taskId, claim.runId, { reason: outcome.reason });
    log.info('task resolved', { ...ids, taskState: describeOutcome(outcome) });
  } catch (err) {
    if (statusCodeOf(err) === 409) {
      log.warn('task already resolved by the queue', { ...ids, wanted: describeOutcome(outcome), error: (err as Error).message });
      return;
    }
    log.error('error resolving task', { ...ids, wanted: describeOutcome(outcome), error: (err as Error).message });
  }
}
