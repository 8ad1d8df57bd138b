import mqtt, { type MqttClient } from 'mqtt';
import type { Bus, BusLog, BusStatus } from './bus.ts';

/**
 * An external MQTT broker (`--bus mqtt://user:pass@host:1883`, or mqtts://), e.g. Mosquitto: QoS 1
 * both ways, topics used as they are (`tips.metal.block` is one MQTT topic level). The client
 * reconnects by itself and subscribes again; `publish` resolves on the broker's PUBACK.
 */
export class MqttBus implements Bus {
  private readonly client: MqttClient;
  private state: BusStatus = 'down';
  readonly reachesReplicas = true;
  private readonly listeners = new Set<(s: BusStatus) => void>();
  private readonly handlers = new Map<string, Set<(msg: unknown) => void>>();
  private lastError = '';

  constructor(url: string, log: BusLog) {
    this.client = mqtt.connect(url, {
      clientId: `tips-master-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
      reconnectPeriod: 250,
      connectTimeout: 5_000,
      keepalive: 5,
      clean: true,
    });
    this.client.on('connect', () => this.set('up'));
    this.client.on('close', () => this.set('down'));
    this.client.on('offline', () => this.set('down'));
    this.client.on('error', (err) => {
      if (err.message !== this.lastError) log.warn({ event: 'bus_error', bus: 'mqtt', err: err.message }, 'MQTT bus');
      this.lastError = err.message;
    });
    this.client.on('message', (topic, payload) => {
      let msg: unknown;
      try {
        msg = JSON.parse(payload.toString('utf8'));
      } catch {
        msg = null;
      }
      for (const h of this.handlers.get(topic) ?? []) h(msg);
    });
  }

  private set(s: BusStatus): void {
    if (s === this.state) return;
    this.state = s;
    for (const l of this.listeners) l(s);
  }

  async publish(topic: string, msg: object): Promise<void> {
    if (this.state === 'down') throw new Error('MQTT broker not connected');
    await this.client.publishAsync(topic, JSON.stringify(msg), { qos: 1 });
  }

  subscribe(topic: string, handler: (msg: unknown) => void): () => void {
    let set = this.handlers.get(topic);
    if (!set) {
      set = new Set();
      this.handlers.set(topic, set);
      // Kept by mqtt.js across reconnections (resubscribe).
      this.client.subscribe(topic, { qos: 1 });
    }
    set.add(handler);
    return () => {
      set.delete(handler);
      if (set.size === 0) {
        this.handlers.delete(topic);
        this.client.unsubscribe(topic);
      }
    };
  }

  status(): BusStatus {
    return this.state;
  }

  onStatus(listener: (s: BusStatus) => void): void {
    this.listeners.add(listener);
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
    this.set('down');
  }
}
