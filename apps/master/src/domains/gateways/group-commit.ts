/**
 * Group commit: items submitted while a batch is being written join the next batch, and each
 * caller resolves only once its own batch is in the database, with that item's own result. Under
 * load, hundreds of one-row transactions per second become a few multi-row ones; a caller never
 * proceeds before its write is durable. Used for request nonces (gateways) and decision records
 * (discovery), the two writes on the registration path.
 */
export class GroupCommit<T, R> {
  private queue: { item: T; group?: { size: number }; resolve: (r: R) => void; reject: (err: unknown) => void }[] = [];
  private flushing = false;

  /** `write` gets a batch and returns one result per item, in order. */
  constructor(
    private readonly write: (items: T[]) => Promise<R[]>,
    private readonly maxBatch = 500,
  ) {}

  submit(item: T): Promise<R> {
    return new Promise((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.schedule();
    });
  }

  /**
   * Several items of one caller: they are written in the same transaction (a batch never splits
   * across two), and the promise resolves with their results, in order, once that is committed.
   */
  submitAll(items: T[]): Promise<R[]> {
    if (items.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      const results: R[] = new Array(items.length);
      let left = items.length;
      let failed = false;
      const group = { size: items.length };
      items.forEach((item, i) => {
        this.queue.push({
          item,
          group,
          resolve: (r) => {
            results[i] = r;
            if (--left === 0 && !failed) resolve(results);
          },
          reject: (err) => {
            if (!failed) reject(err);
            failed = true;
          },
        });
      });
      this.schedule();
    });
  }

  private schedule(): void {
    if (!this.flushing) {
      this.flushing = true;
      // Let every request already parsed in this turn of the event loop join the batch.
      setImmediate(() => void this.flush());
    }
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      // Up to maxBatch items, but never a caller's group cut in two (a group larger than maxBatch goes alone).
      let n = 0;
      while (n < this.queue.length) {
        const size = this.queue[n]!.group?.size ?? 1;
        if (n > 0 && n + size > this.maxBatch) break;
        n += size;
      }
      const batch = this.queue.splice(0, n);
      try {
        const results = await this.write(batch.map((b) => b.item));
        for (const [i, b] of batch.entries()) b.resolve(results[i] as R);
      } catch (err) {
        for (const b of batch) b.reject(err);
      }
    }
    this.flushing = false;
  }
}
