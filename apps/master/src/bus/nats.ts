import { connect, type NatsConnection, type Subscription } from 'nats';
import type { Bus, BusLog, BusStatus } from './bus.ts';

/**
 * A NATS cluster (`--bus nats://a:4222,nats://b:4222,nats://c:4222`), core subjects only: every
 * message is a hint over database state (bus.ts), so at-most-once delivery is enough and JetStream
 * would add a stream to run without adding a guarantee the replicas need. The client knows every
 * node, fails over to another when one dies, and buffers what is published while it reconnects;
 * `publish` resolves once the server has the message (a flush round trip).
 */
export class NatsBus implements Bus {
  private nc: NatsConnection | undefined;
  private state: BusStatus = 'down';
  readonly reachesReplicas = true;
  private closed = false;
  private readonly listeners = new Set<(s: BusStatus) => void>();
  private readonly subs = new Map<(msg: unknown) => void, { topic: string; sub?: Subscription }>();

  constructor(
    private readonly servers: string[],
    private readonly log: BusLog,
  ) {
    void this.start();
  }

  private async start(): Promise<void> {
    try {
      this.nc = await connect({
        servers: this.servers,
        name: `tips-master-${process.pid}`,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        waitOnFirstConnect: true,
        // A node that stops answering (not just one that closed its socket) is left within ~4 s.
        pingInterval: 2_000,
        maxPingOut: 2,
      });
    } catch (err) {
      if (!this.closed) this.log.warn({ event: 'bus_connect_failed', bus: 'nats', err: (err as Error).message }, 'NATS: cannot connect');
      return;
    }
    if (this.closed) {
      await this.nc.close();
      return;
    }
    for (const [handler, s] of this.subs) s.sub = this.attach(s.topic, handler);
    this.set('up');
    for await (const s of this.nc.status()) {
      if (s.type === 'disconnect') this.set('down');
      else if (s.type === 'reconnect') this.set('up');
    }
  }

  private attach(topic: string, handler: (msg: unknown) => void): Subscription {
    return this.nc!.subscribe(topic, {
      callback: (err, m) => {
        if (err) return;
        let msg: unknown;
        try {
          msg = JSON.parse(Buffer.from(m.data).toString('utf8'));
        } catch {
          msg = null;
        }
        handler(msg);
      },
    });
  }

  private set(s: BusStatus): void {
    if (s === this.state) return;
    this.state = s;
    for (const l of this.listeners) l(s);
  }

  async publish(topic: string, msg: object): Promise<void> {
    const nc = this.nc;
    if (!nc || nc.isClosed()) throw new Error('NATS not connected');
    nc.publish(topic, Buffer.from(JSON.stringify(msg)));
    await nc.flush();
  }

  subscribe(topic: string, handler: (msg: unknown) => void): () => void {
    const entry: { topic: string; sub?: Subscription } = { topic };
    if (this.nc) entry.sub = this.attach(topic, handler);
    this.subs.set(handler, entry);
    return () => {
      entry.sub?.unsubscribe();
      this.subs.delete(handler);
    };
  }

  /** The node this client is connected to now (host:port), if any. */
  server(): string | undefined {
    return this.nc && !this.nc.isClosed() ? this.nc.getServer() : undefined;
  }

  status(): BusStatus {
    return this.state;
  }

  onStatus(listener: (s: BusStatus) => void): void {
    this.listeners.add(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.set('down');
    await this.nc?.close().catch(() => {});
  }
}
