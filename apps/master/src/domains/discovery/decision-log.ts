import type { RegistrationRecord } from './model.ts';

/**
 * Group commit for decision records: every record written while a batch is being committed joins
 * the next batch, and each caller resolves only once its own batch is in the database. Under load
 * this turns hundreds of single-row transactions per second into a few multi-row ones; a caller
 * never answers a gateway before the decision is durably recorded (T9).
 */
export class DecisionLog {
  private queue: { record: RegistrationRecord; done: (err?: unknown) => void }[] = [];
  private flushing = false;

  constructor(
    private readonly write: (records: RegistrationRecord[]) => Promise<void>,
    private readonly maxBatch = 500,
  ) {}

  append(record: RegistrationRecord): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ record, done: (err) => (err === undefined ? resolve() : reject(err)) });
      if (!this.flushing) {
        this.flushing = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      try {
        await this.write(batch.map((b) => b.record));
        for (const b of batch) b.done();
      } catch (err) {
        for (const b of batch) b.done(err);
      }
    }
    this.flushing = false;
  }
}
