// Something a run's features share (its network, its gateway server): made by the first feature
// that asks for it, held by each that does, closed when the last one gives it back. Keyed by the
// run's plan object, which is the same for every feature of the run.

export interface SharedLease<T> {
  value: T;
  /** Gives it back (once); the last holder closes it. Never throws. */
  release(): Promise<void>;
}

export class PerRunShared<T> {
  readonly #runs = new WeakMap<object, { value: Promise<T>; holders: number }>();

  /**
   * The run's value, made by `make` for the first holder; `close` runs once the last holder
   * released it (never when `make` failed: `make` cleans up after itself). A holder whose
   * `make` failed is released before the error is thrown.
   */
  async acquire(run: object, make: () => Promise<T>, close: (value: T) => Promise<unknown>): Promise<SharedLease<T>> {
    let shared = this.#runs.get(run);
    if (!shared) {
      shared = { value: make(), holders: 0 };
      shared.value.catch(() => undefined);
      this.#runs.set(run, shared);
    }
    shared.holders += 1;
    const held = shared;
    let released = false;
    const release = async (): Promise<void> => {
      if (released) return;
      released = true;
      held.holders -= 1;
      if (held.holders > 0) return;
      if (this.#runs.get(run) === held) this.#runs.delete(run);
      const value = await held.value.catch(() => undefined);
      if (value !== undefined) await close(value).catch(() => undefined);
    };
    try {
      return { value: await held.value, release };
    } catch (err) {
      await release();
      throw err;
    }
  }
}
