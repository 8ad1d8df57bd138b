import type { Counter } from 'prom-client';
import type { BusHub } from '../../bus/bus.ts';
import type { Notification, NotificationBus } from './model.ts';

/** Publishes go out in batches of this many, yielding to the event loop between them so the broker's socket writes start early. */
const BATCH = 1000;

type NotificationLog = { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };

export const metalTopic = (tipsId: string) => `tips/metal/${tipsId}`;

/** MQTT fan-out (T15, S9): one message per metal on its own topic, through whichever bus is configured. */
export class NotificationService {
  private bus: NotificationBus | undefined;
  private published: Counter<'reason' | 'result'> | undefined;

  private log: NotificationLog = { warn: () => {}, error: () => {} };
  private replicas: BusHub | undefined;

  useLog(log: NotificationLog): void {
    this.log = log;
  }

  useBus(bus: NotificationBus | undefined): void {
    this.bus = bus;
  }

  /**
   * With an embedded broker on every replica, a metal is connected to one of them only: the replica
   * that takes a change publishes to its own broker and relays the notification on the bus
   * (`tips.metal.notify`), and every other replica publishes it to its broker. An external broker
   * is shared, so nothing is relayed.
   */
  useReplicas(hub: BusHub): void {
    this.replicas = hub;
    hub.on('tips.metal.notify', async (m) => {
      if (this.bus?.connectedMetals() !== undefined) await this.publishLocally(m.metalIds, m.notification);
    });
  }

  useMetrics(published: Counter<'reason' | 'result'>): void {
    this.published = published;
  }

  /** The URL and topic a metal subscribes at, or null when push is off (the metal pulls). */
  subscription(tipsId: string): { url: string; topic: string } | null {
    return this.bus ? { url: this.bus.url, topic: metalTopic(tipsId) } : null;
  }

  connectedMetals(): number | undefined {
    return this.bus?.connectedMetals();
  }

  /** S14/T16: a revoked, retired, deleted or blocked metal loses its open MQTT connection at once. */
  disconnect(metalId: string, reason: string): void {
    const n = this.bus?.disconnectMetal(metalId);
    if (n) this.log.warn({ event: 'security', code: 'mqtt_disconnected', metal: metalId, reason, connections: n }, 'mqtt connection closed: metal access revoked');
  }

  /**
   * The fan-out in the background (T15): returns at once — the caller answers before the recipients
   * are looked up or anything is published. A failed lookup is logged (error) and counted, never
   * thrown; each failed publish as in `notify`. With no bus nothing is looked up (metals pull).
   */
  fanOut(recipients: () => Promise<readonly string[]>, n: Notification): Promise<number> {
    if (!this.bus) return Promise.resolve(0);
    return new Promise<void>((r) => setImmediate(r))
      .then(async () => this.notify(await recipients(), n))
      .catch((err: unknown) => {
        this.published?.inc({ reason: n.reason, result: 'error' });
        this.log.error({ event: 'notification_fanout_failed', spaceId: n.spaceId, reason: n.reason, err: (err as Error).message }, 'notification fan-out failed');
        return 0;
      });
  }

  /**
   * Publishes to each metal's topic without awaiting each message (in batches that yield to the
   * event loop); a failed publish is logged and counted, never thrown (pull still works).
   */
  async notify(metalIds: readonly string[], n: Notification): Promise<number> {
    const local = this.publishLocally(metalIds, n);
    if (this.replicas && this.bus?.connectedMetals() !== undefined) {
      for (let i = 0; i < metalIds.length; i += BATCH) await this.replicas.publish('tips.metal.notify', { metalIds: metalIds.slice(i, i + BATCH), notification: n });
    }
    return local;
  }

  private async publishLocally(metalIds: readonly string[], n: Notification): Promise<number> {
    const bus = this.bus;
    if (!bus || metalIds.length === 0) return 0;
    const payload = new Uint8Array(Buffer.from(JSON.stringify(n)));
    let sent = 0;
    const pending: Promise<void>[] = [];
    for (let i = 0; i < metalIds.length; i += BATCH) {
      if (i > 0) await new Promise<void>((r) => setImmediate(r));
      for (const id of metalIds.slice(i, i + BATCH)) {
        pending.push(
          bus.publish(metalTopic(id), payload).then(
            () => {
              sent++;
              this.published?.inc({ reason: n.reason, result: 'ok' });
            },
            (err: unknown) => {
              this.published?.inc({ reason: n.reason, result: 'error' });
              this.log.warn({ event: 'notification_failed', metal: id, err: (err as Error).message }, 'notification not published');
            },
          ),
        );
      }
    }
    await Promise.all(pending);
    return sent;
  }
}
