// One piece of work per key, shared by everyone who asks while it runs (Nomad's image
// coordinator): the first caller starts it, later callers join and get the same result.
// Progress lines go to every caller still waiting. A caller that gives up (its signal aborts)
// stops waiting at once; the work itself is aborted only when no caller is left.

export type LineSink = (line: string) => void;

export interface FlightContext {
  /** Aborted when every caller has given up. */
  signal: AbortSignal;
  /** Sends a line to every caller still waiting. */
  emit: LineSink;
}

interface Flight<T> {
  controller: AbortController;
  sinks: Set<LineSink>;
  waiters: number;
  promise: Promise<T>;
}

export interface JoinOptions {
  signal?: AbortSignal;
  emit?: LineSink;
}

export class SingleFlight<T> {
  private readonly flights = new Map<string, Flight<T>>();

  /** Whether work for `key` is under way. */
  has(key: string): boolean {
    const flight = this.flights.get(key);
    return flight !== undefined && !flight.controller.signal.aborted;
  }

  /**
   * The result of `work` for `key`: started now, or joined when under way (`shared` true).
   * Rejects with the caller's abort reason when its own signal aborts first.
   */
  async run(key: string, work: (ctx: FlightContext) => Promise<T>, options: JoinOptions = {}): Promise<{ value: T; shared: boolean }> {
    options.signal?.throwIfAborted();
    let flight = this.flights.get(key);
    const shared = flight !== undefined && !flight.controller.signal.aborted;
    if (!flight || !shared) {
      const controller = new AbortController();
      const sinks = new Set<LineSink>();
      const emit: LineSink = (line) => { for (const sink of sinks) sink(line); };
      const created: Flight<T> = { controller, sinks, waiters: 0, promise: undefined as unknown as Promise<T> };
      created.promise = (async () => work({ signal: controller.signal, emit }))().finally(() => {
        if (this.flights.get(key) === created) this.flights.delete(key);
      });
      created.promise.catch(() => { /* each caller hears of it */ });
      this.flights.set(key, created);
      flight = created;
    }
    const joined = flight;
    const sink = options.emit;
    if (sink) joined.sinks.add(sink);
    joined.waiters++;
    let onAbort: (() => void) | undefined;
    const gaveUp = new Promise<never>((_, reject) => {
      const signal = options.signal;
      if (!signal) return;
      onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
    });
    gaveUp.catch(() => { /* raced below */ });
    try {
      const value = await Promise.race([joined.promise, gaveUp]);
      return { value, shared };
    } finally {
      if (onAbort) options.signal!.removeEventListener('abort', onAbort);
      if (sink) joined.sinks.delete(sink);
      joined.waiters--;
      if (joined.waiters === 0 && options.signal?.aborted) joined.controller.abort(options.signal.reason);
    }
  }
}
