// The send lock: the sender holds it for a whole message so that the idle health poll never
// runs between AT+QMMSEDIT steps; the poll only ever tries it and skips when it is taken.

export class SendLock {
  private tail: Promise<void> = Promise.resolve();
  private holders = 0;

  /** True while someone holds the lock or waits for it. */
  get busy(): boolean {
    return this.holders > 0;
  }

  /** Runs `fn` when the lock is free, holding it until `fn` settles. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    this.holders++;
    const prev = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((r) => (release = r));
    try {
      await prev;
      return await fn();
    } finally {
      this.holders--;
      release();
    }
  }

  /** Runs `fn` only when nobody holds or waits for the lock; otherwise resolves `undefined`. */
  async tryRun<T>(fn: () => Promise<T>): Promise<T | undefined> {
    if (this.busy) return undefined;
    return this.run(fn);
  }
}
