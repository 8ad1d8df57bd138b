import type { Counter } from 'prom-client';
import type { Notification, NotificationBus } from './model.ts';

export const metalTopic = (tipsId: string) => `tips/metal/${tipsId}`;

/** MQTT fan-out (T15, S9): one message per metal on its own topic, through whichever bus is configured. */
export class NotificationService {
  private bus: NotificationBus | undefined;
  private published: Counter<'reason' | 'result'> | undefined;

  private log: { warn(obj: object, msg: string): void } = { warn: () => {} };

  useLog(log: { warn(obj: object, msg: string): void }): void {
    this.log = log;
  }

  useBus(bus: NotificationBus | undefined): void {
    this.bus = bus;
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

  /** Publishes to each metal's topic; a failed publish is logged and counted, never thrown (pull still works). */
  async notify(metalIds: readonly string[], n: Notification): Promise<number> {
    const bus = this.bus;
    if (!bus || metalIds.length === 0) return 0;
    const payload = new Uint8Array(Buffer.from(JSON.stringify(n)));
    let sent = 0;
    await Promise.all(
      metalIds.map(async (id) => {
        try {
          await bus.publish(metalTopic(id), payload);
          sent++;
          this.published?.inc({ reason: n.reason, result: 'ok' });
        } catch (err) {
          this.published?.inc({ reason: n.reason, result: 'error' });
          this.log.warn({ event: 'notification_failed', metal: id, err: (err as Error).message }, 'notification not published');
        }
      }),
    );
    return sent;
  }
}
