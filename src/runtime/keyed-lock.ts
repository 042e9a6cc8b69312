/**
 * Serialises operations per key (an environment id) within this process: an operation starts
 * once every operation queued before it on the same key has settled, whatever its outcome.
 * Operations on different keys run concurrently. Nothing is held for a key with nothing queued.
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(key: string, operation: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const current = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous.then(() => current);
    this.tails.set(key, tail);
    await previous;
    try {
      return await operation();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  /** Keys with an operation running or queued (for tests). */
  get size(): number {
    return this.tails.size;
  }
}
