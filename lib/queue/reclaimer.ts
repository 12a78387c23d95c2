// Keeps a claim alive: reclaims before takenUntil (fresh credentials from then on) and
// watches for cancellation.
//  - 409 on reclaim, or a status showing the run is no longer running: the run was resolved
//    by someone else (cancelled, deadline exceeded, claim expired). `onCancelled` fires.
//  - any other 4xx: the queue says the request is wrong; retrying cannot help (DESIGN: never
//    retry a 4xx). `onLost` fires at once.
//  - network errors and 5xx: retried with backoff, but only while there is still time to act
//    on a lost claim: `onLost` fires at giveUpAt() at the latest, while the claim's credentials
//    still work, so the run can upload its log and report exception/internal-error itself
//    instead of the queue recording claim-expired.
import { setTimeout as sleep } from 'node:timers/promises';
import type { WorkerLog } from '../log/worker-log.ts';
import { backoffDelayMs, statusCodeOf } from '../retry/with-retries.ts';
import type { QueueClient } from './taskcluster.ts';
import type { TaskClaim } from './task-claim.ts';

export interface ReclaimerOptions {
  claim: TaskClaim;
  log: WorkerLog;
  marginSeconds: number;
  /** Seconds between cancellation checks; 0 turns them off. */
  cancelPollSeconds: number;
  /** A client allowed to read task status (the worker's own). */
  statusQueue?: QueueClient;
  /** `reasonResolved` is the queue's reason (canceled, deadline-exceeded, ...) when known. */
  onCancelled(reason: string, reasonResolved?: string): void;
  onLost(error: Error): void;
  /** After each successful reclaim: the claim now carries new credentials. */
  onReclaimed?(): void;
}

/** Time a run needs, at most, between a lost claim and its report (cleanup, log upload). */
export const LOST_CLAIM_GUARD_MS = 30_000;

export type ReclaimErrorKind = 'cancelled' | 'lost' | 'transient';

/** What a failed reclaim means (see the top of this file). */
export function classifyReclaimError(err: unknown): ReclaimErrorKind {
  const code = statusCodeOf(err);
  if (code === 409) return 'cancelled';
  if (code !== undefined && code >= 400 && code < 500) return 'lost';
  return 'transient';
}

/**
 * When to stop retrying a reclaim that keeps failing: LOST_CLAIM_GUARD_MS before takenUntil,
 * but never less than half of the time that was left when reclaiming began (a short claim
 * still gets retries and still leaves time to report).
 */
export function giveUpAt(takenUntilMs: number, reclaimStartedMs: number): number {
  return takenUntilMs - Math.min(LOST_CLAIM_GUARD_MS, Math.max(0, takenUntilMs - reclaimStartedMs) / 2);
}

/** Delay before retry number `attempt` (1, 2, ...): 1 s doubling, at most 10 s. */
export function retryDelayMs(attempt: number): number {
  return backoffDelayMs(attempt, 1000, 10_000);
}

/**
 * `marginSeconds` before takenUntil, at the latest half way; but never sooner than a quarter
 * of the way, so a margin as long as the claim itself does not reclaim in a busy loop.
 */
export function nextReclaimDelayMs(remainingMs: number, marginSeconds: number): number {
  return Math.max(0, remainingMs / 4, Math.min(remainingMs - marginSeconds * 1000, remainingMs / 2));
}

export class Reclaimer {
  private readonly options: ReclaimerOptions;
  private readonly abort = new AbortController();
  private fired = false;

  constructor(options: ReclaimerOptions) { this.options = options; }

  start(): void {
    void this.reclaimLoop();
    if (this.options.cancelPollSeconds > 0 && this.options.statusQueue) void this.cancelWatch();
  }

  stop(): void { this.abort.abort(); }

  private fire(kind: 'cancel' | 'lost', detail: string | Error, reasonResolved?: string): void {
    if (this.fired || this.abort.signal.aborted) return;
    this.fired = true;
    this.stop();
    if (kind === 'cancel') this.options.onCancelled(detail as string, reasonResolved);
    else this.options.onLost(detail as Error);
  }

  private async wait(ms: number): Promise<boolean> {
    try { await sleep(Math.max(0, ms), undefined, { signal: this.abort.signal }); return true; } catch { return false; }
  }

  private async reclaimLoop(): Promise<void> {
    const { claim, log } = this.options;
    const ids = { taskId: claim.taskId, runId: claim.runId };
    while (await this.wait(nextReclaimDelayMs(claim.takenUntil.getTime() - Date.now(), this.options.marginSeconds))) {
      const takenUntil = claim.takenUntil.getTime();
      const deadline = giveUpAt(takenUntil, Date.now());
      let attempt = 0;
      for (;;) {
        attempt += 1;
        const call = claim.queue().reclaimTask(claim.taskId, claim.runId).then(
          (result) => ({ ok: true as const, result }), (error: unknown) => ({ ok: false as const, error }));
        // A reclaim that hangs past the deadline counts as failed.
        const timeout = new AbortController();
        const expired = sleep(Math.max(0, deadline - Date.now()), undefined, { signal: AbortSignal.any([this.abort.signal, timeout.signal]) })
          .then(() => undefined, () => undefined);
        const outcome = await Promise.race([call, expired]);
        timeout.abort();
        if (this.abort.signal.aborted) return;
        if (outcome?.ok) {
          claim.update(outcome.result);
          this.options.onReclaimed?.();
          log.info('reclaimed task', { ...ids, takenUntil: outcome.result.takenUntil });
          break;
        }
        const error = outcome ? outcome.error : new Error('the reclaim request did not answer in time');
        const kind = outcome ? classifyReclaimError(error) : 'transient';
        const message = (error as Error).message;
        if (kind === 'cancelled') {
          log.warn('cancel task', { ...ids, reason: 'reclaim answered 409: the run was resolved (cancelled, deadline exceeded, or claim expired)' });
          this.fire('cancel', 'The queue refused to extend the claim: the run was resolved.', await this.reasonResolved());
          return;
        }
        log.error('error reclaiming task', { ...ids, error: message, statusCode: statusCodeOf(error), attempt });
        if (kind === 'lost') {
          this.fire('lost', new Error(`Could not reclaim task. The queue refused: ${message}`));
          return;
        }
        const delay = retryDelayMs(attempt);
        if (Date.now() + delay >= deadline) {
          this.fire('lost', new Error(`Could not reclaim task before its claim ran out: ${message}`));
          return;
        }
        if (!(await this.wait(delay))) return;
      }
    }
  }

  /**
   * Why the queue refused a reclaim: the run's reasonResolved when the status can be read, else
   * `deadline-exceeded` when the task's deadline has passed. The real queue refuses reclaims past
   * the deadline at once but resolves the run only when its deadline resolver comes round (up to
   * about a minute later), so the status may still say `running` then.
   */
  private async reasonResolved(): Promise<string | undefined> {
    const { claim, statusQueue } = this.options;
    let reason: string | undefined;
    if (statusQueue) {
      try {
        const { status } = await statusQueue.status(claim.taskId);
        reason = status.runs.find((r) => r.runId === claim.runId)?.reasonResolved;
      } catch { /* unknown */ }
    }
    const deadline = Date.parse(claim.claim.task.deadline);
    return reason ?? (deadline <= Date.now() ? 'deadline-exceeded' : undefined);
  }

  private async cancelWatch(): Promise<void> {
    const { claim, log, statusQueue } = this.options;
    while (await this.wait(this.options.cancelPollSeconds * 1000)) {
      try {
        const { status } = await statusQueue!.status(claim.taskId);
        if (this.abort.signal.aborted) return;
        const run = status.runs.find((r) => r.runId === claim.runId);
        if (run && run.state !== 'running') {
          const why = run.reasonResolved === 'canceled' ? 'The task was cancelled.' : `The run was resolved elsewhere (${run.state}/${run.reasonResolved ?? 'unknown'}).`;
          log.warn('cancel task', { taskId: claim.taskId, runId: claim.runId, state: run.state, reason: run.reasonResolved });
          this.fire('cancel', why, run.reasonResolved);
          return;
        }
      } catch (err) {
        const code = statusCodeOf(err);
        if (code === 401 || code === 403) {
          log.warn('cannot read task status; cancellation is noticed at reclaim only', { taskId: claim.taskId, error: (err as Error).message });
          return;
        }
        log.debug('status check failed', { taskId: claim.taskId, error: (err as Error).message });
      }
    }
  }
}
