// Keeps a claim alive: reclaims before takenUntil (fresh credentials from then on) and
// watches for cancellation. A 409 on reclaim, or a status showing the run is no longer
// running, means the task was cancelled (or the claim was lost): `onCancelled` fires once.
// Any other reclaim failure that lasts until takenUntil fires `onLost`.
import { setTimeout as sleep } from 'node:timers/promises';
import type { WorkerLog } from '../log/worker-log.ts';
import { statusCodeOf, type QueueClient } from './taskcluster.ts';
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

  /**
   * `marginSeconds` before takenUntil, at the latest half way; but never sooner than a quarter
   * of the way, so a margin as long as the claim itself does not reclaim in a busy loop.
   */
  private nextReclaimDelay(): number {
    const remaining = this.options.claim.takenUntil.getTime() - Date.now();
    return Math.max(0, remaining / 4, Math.min(remaining - this.options.marginSeconds * 1000, remaining / 2));
  }

  private async reclaimLoop(): Promise<void> {
    const { claim, log } = this.options;
    const ids = { taskId: claim.taskId, runId: claim.runId };
    while (await this.wait(this.nextReclaimDelay())) {
      try {
        const result = await claim.queue().reclaimTask(claim.taskId, claim.runId);
        if (this.abort.signal.aborted) return;
        claim.update(result);
        log.info('reclaimed task', { ...ids, takenUntil: result.takenUntil });
      } catch (err) {
        if (this.abort.signal.aborted) return;
        if (statusCodeOf(err) === 409) {
          log.warn('cancel task', { ...ids, reason: 'reclaim answered 409: the task was cancelled or the claim was lost' });
          this.fire('cancel', 'The task was cancelled (or its claim was lost): the queue refused to extend the claim.');
          return;
        }
        log.error('error reclaiming task', { ...ids, error: (err as Error).message });
        if (Date.now() >= claim.takenUntil.getTime() - 1000) {
          this.fire('lost', new Error(`could not reclaim the task before its claim expired: ${(err as Error).message}`));
          return;
        }
        if (!(await this.wait(Math.min(5000, (claim.takenUntil.getTime() - Date.now()) / 4)))) return;
      }
    }
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
