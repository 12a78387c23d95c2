// claimWork callers waiting for work, per task queue. When a run becomes pending the queue
// wakes every waiter of that task queue; each tries to claim again (in a transaction, so
// no two get the same run) and those that find nothing wait for the rest of their time.
export type WaitOutcome = 'woken' | 'timeout' | 'aborted' | 'closed';

export class WorkWaiters {
  private readonly waiting = new Map<string, Set<(outcome: WaitOutcome) => void>>();
  private readonly active = new Set<Promise<void>>();
  private closed = false;

  get isClosed(): boolean { return this.closed; }

  /** Waits until work may be available in the queue, `ms` pass, `signal` aborts or close(). */
  wait(taskQueueId: string, ms: number, signal?: AbortSignal): Promise<WaitOutcome> {
    if (this.closed) return Promise.resolve('closed');
    if (signal?.aborted) return Promise.resolve('aborted');
    return new Promise((resolve) => {
      let set = this.waiting.get(taskQueueId);
      if (!set) { set = new Set(); this.waiting.set(taskQueueId, set); }
      const finish = (outcome: WaitOutcome) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        const s = this.waiting.get(taskQueueId);
        s?.delete(finish);
        if (s && s.size === 0) this.waiting.delete(taskQueueId);
        resolve(outcome);
      };
      const onAbort = () => finish('aborted');
      const timer = setTimeout(() => finish('timeout'), Math.max(0, ms));
      signal?.addEventListener('abort', onAbort, { once: true });
      set.add(finish);
    });
  }

  /** Sleeps `ms` unless aborted or closed (for quarantined workers). */
  sleep(ms: number, signal?: AbortSignal): Promise<WaitOutcome> {
    return this.wait('\u0000sleep', ms, signal).then((o) => (o === 'woken' ? 'timeout' : o));
  }

  wake(taskQueueId: string): void {
    const set = this.waiting.get(taskQueueId);
    if (!set) return;
    for (const finish of [...set]) finish('woken');
  }

  /** Runs a long-poll so that close() can wait for it to answer. */
  async track<T>(poll: () => Promise<T>): Promise<T> {
    const running = poll();
    const settled = running.then(() => undefined, () => undefined);
    this.active.add(settled);
    try {
      return await running;
    } finally {
      this.active.delete(settled);
    }
  }

  /** Wakes every waiter with 'closed' and waits until their long-polls have answered. */
  async close(): Promise<void> {
    this.closed = true;
    for (const set of [...this.waiting.values()]) for (const finish of [...set]) finish('closed');
    await Promise.all([...this.active]);
    // Let the answers be written before the server closes its connections.
    await new Promise((resolve) => setImmediate(resolve));
  }
}
