// One holder at a time per key (here: per image id), in the order they asked; other keys are
// not held up. The ImageStore checks that an image is present and pins it for a task under the
// image's lock, and the disk budget removes an image under the same lock, so the two never
// interleave: either the task's pin comes first (and the budget sees the image in use), or the
// removal does (and the task sees the image gone and loads or pulls it again).

export class KeyedLock {
  private readonly tails = new Map<string, Promise<void>>();

  /** Runs `fn` once every earlier holder of `key` is done; resolves or rejects as `fn` does. */
  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let done!: () => void;
    const mine = new Promise<void>((resolve) => { done = resolve; });
    const tail = previous.then(() => mine);
    this.tails.set(key, tail);
    await previous;
    try {
      return await fn();
    } finally {
      done();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  /** Whether someone holds or waits for `key`. */
  held(key: string): boolean {
    return this.tails.has(key);
  }
}
