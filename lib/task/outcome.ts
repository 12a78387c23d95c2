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

/** Why a run was interrupted from outside its own stages. */
export type Interrupt =
  | { kind: 'cancel'; message: string }
  | { kind: 'shutdown' }
  | { kind: 'lost'; message: string };

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
