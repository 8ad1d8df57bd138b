import type { Bus, BusStatus } from './bus.ts';

/**
 * The embedded default: delivers within one process. One master alone needs nothing more; unit
 * tests share one instance between several masters built in the same process (replicas), and
 * `partition()` stands for a bus that is down (messages published meanwhile are lost, as on a
 * network bus).
 */
export class InProcessBus implements Bus {
  private readonly handlers = new Map<string, Set<(msg: unknown) => void>>();
  private readonly listeners = new Set<(s: BusStatus) => void>();
  private state: BusStatus = 'up';
  /** False for a lone master; true when tests share this instance between replicas built in one process. */
  readonly reachesReplicas: boolean;

  constructor(opts: { sharedByReplicas?: boolean } = {}) {
    this.reachesReplicas = opts.sharedByReplicas === true;
  }

  async publish(topic: string, msg: object): Promise<void> {
    if (this.state === 'down') throw new Error('in-process bus is partitioned');
    // Serialised as on a network bus: a subscriber never shares the publisher's objects.
    const text = JSON.stringify(msg);
    for (const h of this.handlers.get(topic) ?? []) queueMicrotask(() => h(JSON.parse(text)));
  }

  subscribe(topic: string, handler: (msg: unknown) => void): () => void {
    const set = this.handlers.get(topic) ?? new Set();
    set.add(handler);
    this.handlers.set(topic, set);
    return () => set.delete(handler);
  }

  status(): BusStatus {
    return this.state;
  }

  onStatus(listener: (s: BusStatus) => void): void {
    this.listeners.add(listener);
  }

  /** Tests: the bus goes down (true) or comes back (false). */
  partition(down: boolean): void {
    const s: BusStatus = down ? 'down' : 'up';
    if (s === this.state) return;
    this.state = s;
    for (const l of this.listeners) l(s);
  }

  async close(): Promise<void> {
    this.handlers.clear();
  }
}
