// The claim loop: long-polls claimWork for as many tasks as there are free slots and hands
// each claim to `runTask`, never running more than `capacity` at once (p-queue). It never
// sleeps when idle: the queue's long poll is the wait. When something stops it from
// claiming (disk budget, shutdown) it says why in the worker log.
import PQueue from 'p-queue';
import { setTimeout as sleep } from 'node:timers/promises';
import type { WorkerLog } from '../log/worker-log.ts';
import { backoffDelayMs } from '../retry/with-retries.ts';
import { abortClient, type ClaimResponse, type QueueClient } from './taskcluster.ts';

export interface ClaimGate {
  /** Resolves to undefined when claiming may go on, else to the reason it may not. */
  (freeSlots: number): Promise<string | undefined>;
}

export interface ClaimLoopOptions {
  queue: QueueClient;
  taskQueueId: string;
  workerGroup: string;
  workerId: string;
  capacity: number;
  log: WorkerLog;
  /** Runs one claimed task to resolution; should not throw (if it does, `runFailed` is called). */
  runTask(claim: ClaimResponse): Promise<void>;
  /** runTask threw: the run may be unresolved, so resolve it (exception/internal-error). */
  runFailed?(claim: ClaimResponse, error: Error): Promise<void>;
  /** A claim that arrives after stop() was called: resolve it without running it. */
  refuseTask(claim: ClaimResponse): Promise<void>;
  gate?: ClaimGate;
  /** Called every time the worker becomes idle (no task running), and once at start. */
  onIdle?(): void;
  onBusy?(): void;
}

export class ClaimLoop {
  private readonly options: ClaimLoopOptions;
  private readonly slots: PQueue;
  private stopping = false;
  private loopDone: Promise<void> | undefined;
  private lastRefusal: string | undefined;
  private wake: (() => void) | undefined;
  private polling = false;

  constructor(options: ClaimLoopOptions) {
    this.options = options;
    this.slots = new PQueue({ concurrency: options.capacity });
    this.slots.addEventListener('idle', () => { if (!this.stopping) options.onIdle?.(); });
  }

  get running(): number { return this.slots.size + this.slots.pending; }

  start(): void {
    this.loopDone = this.loop();
    this.options.onIdle?.();
  }

  private async loop(): Promise<void> {
    const { log } = this.options;
    let failures = 0;
    while (!this.stopping) {
      const free = this.options.capacity - this.running;
      if (free <= 0) { await this.untilSlotFree(); continue; }
      let refusal: string | undefined;
      try {
        refusal = await this.options.gate?.(free);
      } catch (err) {
        // A gate that fails (disk check, purge poll) must not end the loop: wait and retry.
        refusal = `the claim gate failed: ${(err as Error).message}`;
      }
      if (refusal) {
        if (refusal !== this.lastRefusal) log.warn('not claiming', { reason: refusal });
        this.lastRefusal = refusal;
        await this.pause(5000);
        continue;
      }
      if (this.lastRefusal) log.info('claiming again', { previousReason: this.lastRefusal });
      this.lastRefusal = undefined;
      // stop() may have come while the gate ran: no await between this check and `polling`,
      // so stop() either sees the loop leave here or aborts the long poll it starts.
      if (this.stopping) break;
      let claims: ClaimResponse[];
      try {
        this.polling = true;
        const started = Date.now();
        ({ tasks: claims } = await this.options.queue.claimWork(this.options.taskQueueId, {
          workerGroup: this.options.workerGroup, workerId: this.options.workerId, tasks: free,
        }));
        log.debug('claimWork answered', { tasks: claims.length, ms: Date.now() - started });
        failures = 0;
      } catch (err) {
        if (this.stopping) break;
        failures += 1;
        const delay = backoffDelayMs(failures + 1, 500, 30_000);
        log.error('claimWork failed', { error: (err as Error).message, retryInMs: delay });
        await this.pause(delay);
        continue;
      } finally {
        this.polling = false;
      }
      for (const claim of claims) {
        const ids = { taskId: claim.status.taskId, runId: claim.runId };
        if (this.stopping) {
          log.warn('claimed task during shutdown; resolving it worker-shutdown', ids);
          await this.options.refuseTask(claim);
          continue;
        }
        log.info('claimed task', ids);
        this.options.onBusy?.();
        void this.slots.add(() => this.options.runTask(claim)).catch(async (err: Error) => {
          log.error('task run failed', { ...ids, error: err?.stack ?? String(err) });
          await this.options.runFailed?.(claim, err).catch((e: Error) => log.error('error resolving task', { ...ids, error: e.message }));
        });
      }
    }
  }

  private untilSlotFree(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => { this.slots.removeEventListener('next', done); this.wake = undefined; resolve(); };
      this.wake = done;
      this.slots.addEventListener('next', done);
    });
  }

  private async pause(ms: number): Promise<void> {
    const ac = new AbortController();
    this.wake = () => ac.abort();
    await sleep(ms, undefined, { signal: ac.signal }).catch(() => {});
    this.wake = undefined;
  }

  /** Stops claiming (an outstanding long poll is abandoned); running tasks go on. */
  async stop(): Promise<void> {
    if (this.stopping) return this.loopDone;
    this.stopping = true;
    if (this.polling) abortClient(this.options.queue);
    this.wake?.();
    await this.loopDone;
  }

  /** Waits until every running task has finished. */
  async drained(): Promise<void> {
    await this.slots.onIdle();
  }
}
