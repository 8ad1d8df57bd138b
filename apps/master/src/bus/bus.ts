import { randomBytes } from 'node:crypto';
import type { Notification } from '../domains/notifications/model.ts';

/**
 * The bus port (CONTRACT I): how master replicas tell each other what they changed. Adapters:
 * in-process (the embedded default: one process, nothing crosses it), an external MQTT broker
 * (`--bus mqtt://…`, e.g. Mosquitto) and a NATS cluster (`--bus nats://a,nats://b,…`).
 *
 * Every message is a hint about state that is durable in the database (a cache to drop, a command
 * already queued, a notification metals would also pull), so delivery is at most once and no
 * adapter needs a persistent stream: a replica that was cut off re-reads what it caches when its
 * bus comes back (`BusHub.onResync`), and while the bus is down the time-bound caches rule.
 */
export interface Bus {
  publish(topic: string, msg: object): Promise<void>;
  subscribe(topic: string, handler: (msg: unknown) => void): () => void;
  status(): BusStatus;
  /**
   * Whether a message reaches other master processes (adapter extension of the contract): false for
   * the in-process bus of a lone master, whose caches then keep their short time bounds.
   */
  readonly reachesReplicas: boolean;
  /** Called on every change of `status()` (adapter extension of the contract). */
  onStatus(listener: (status: BusStatus) => void): void;
  close(): Promise<void>;
}

export type BusStatus = 'up' | 'down';

/** The topics and what each carries. */
export interface BusMessages {
  /** A metal's registration facts (MACs, default Space) changed; null = every metal (a Space was deleted). */
  'tips.metal.eligibility': { metalId: string | null };
  /** A metal was blocked or unblocked (T16). */
  'tips.metal.block': { metalId: string; blocked: boolean };
  /** A gateway's key or certificates stopped being valid (gateway removed). */
  'tips.gateway.key': { gatewayId: string };
  /** A metal's certificates were revoked (revoke, retire, delete): its live sessions end. */
  'tips.cert.revoked': { metalId: string; reason?: string };
  /** A metal's DTLS PSK was revoked: constrained (CoAP) transfers in progress re-authenticate. */
  'tips.psk.revoked': { metalId: string };
  /** A command queued for a gateway whose channel is open on another replica: that one reads it from the queue and pushes it. */
  'tips.gateway.command': { gatewayId: string; commandId: string };
  /** Phase 3 notifications (T15) for metals connected to any replica's embedded MQTT broker. */
  'tips.metal.notify': { metalIds: string[]; notification: Notification };
}
export type BusTopic = keyof BusMessages;
export const BUS_TOPICS: readonly BusTopic[] = ['tips.metal.eligibility', 'tips.metal.block', 'tips.gateway.key', 'tips.cert.revoked', 'tips.psk.revoked', 'tips.gateway.command', 'tips.metal.notify'];

/** How long a publish may hold up the request that caused it (the change is already in the database). */
const PUBLISH_WAIT_MS = 1_000;

interface Envelope {
  /** The replica that published: it applied the change itself and ignores its own message. */
  o: string;
  m: unknown;
}

export interface BusLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface BusMetrics {
  messages: { inc(labels: { direction: 'in' | 'out' | 'dropped'; topic: string }): void };
}

/**
 * One replica's end of the bus: stamps its messages with the replica's ID and drops its own, never
 * lets a bus failure fail the request that published, logs each up/down transition once (warn when
 * it goes down: the replica then relies on its time-bound caches) and tells the domains to re-read
 * what they cache when it comes back up (messages may have been missed meanwhile).
 */
export class BusHub {
  readonly origin: string;
  private log: BusLog = { info: () => {}, warn: () => {} };
  private metrics: BusMetrics | undefined;
  private readonly resync: (() => void)[] = [];
  private last: BusStatus;

  constructor(
    readonly bus: Bus,
    readonly kind: string,
    origin = randomBytes(9).toString('base64url'),
  ) {
    this.origin = origin;
    this.last = bus.status();
    bus.onStatus((s) => this.transition(s));
  }

  useLog(log: BusLog): void {
    this.log = log;
    if (this.last === 'down') this.log.warn({ event: 'bus_down', bus: this.kind }, 'bus not connected: replicas rely on time-bound caches until it is');
  }

  useMetrics(metrics: BusMetrics): void {
    this.metrics = metrics;
  }

  /** True while the other replicas' changes arrive on the bus: caches may then be held longer (their TTLs are a backstop). */
  up(): boolean {
    return this.bus.reachesReplicas && this.bus.status() === 'up';
  }

  /** Runs when the bus comes back up after being down: drop or re-read whatever may have been missed. */
  onResync(handler: () => void): void {
    this.resync.push(handler);
  }

  /** Publishes for the other replicas; resolves when the bus took it (or after at most 1 s), never rejects. */
  async publish<K extends BusTopic>(topic: K, msg: BusMessages[K]): Promise<void> {
    const envelope: Envelope = { o: this.origin, m: msg };
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.bus.publish(topic, envelope),
        new Promise<void>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`not acknowledged within ${PUBLISH_WAIT_MS} ms`)), PUBLISH_WAIT_MS);
        }),
      ]);
      this.metrics?.messages.inc({ direction: 'out', topic });
    } catch (err) {
      this.metrics?.messages.inc({ direction: 'dropped', topic });
      this.log.warn({ event: 'bus_publish_failed', bus: this.kind, topic, err: (err as Error).message }, 'bus message not published (other replicas fall back to their time-bound caches)');
    } finally {
      clearTimeout(timer);
    }
  }

  /** Handles the other replicas' messages on a topic (never this replica's own). */
  on<K extends BusTopic>(topic: K, handler: (msg: BusMessages[K]) => void | Promise<void>): () => void {
    return this.bus.subscribe(topic, (raw) => {
      const e = raw as Partial<Envelope> | null;
      if (typeof e !== 'object' || e === null || typeof e.o !== 'string' || typeof e.m !== 'object' || e.m === null) {
        this.log.warn({ event: 'bus_message_malformed', bus: this.kind, topic }, 'bus message ignored (not a TIPS envelope)');
        return;
      }
      if (e.o === this.origin) return;
      this.metrics?.messages.inc({ direction: 'in', topic });
      Promise.resolve()
        .then(() => handler(e.m as BusMessages[K]))
        .catch((err: unknown) => this.log.warn({ event: 'bus_handler_failed', bus: this.kind, topic, err: (err as Error).message }, 'bus message handler failed'));
    });
  }

  private transition(s: BusStatus): void {
    if (s === this.last) return;
    this.last = s;
    if (s === 'down') {
      this.log.warn({ event: 'bus_down', bus: this.kind }, 'bus down: replicas rely on time-bound caches until it is back');
      return;
    }
    this.log.info({ event: 'bus_up', bus: this.kind }, 'bus up: caches follow the other replicas again');
    for (const h of this.resync) h();
  }

  close(): Promise<void> {
    return this.bus.close();
  }
}

/** What `--bus` names. */
export type BusConfig = { kind: 'inprocess' } | { kind: 'mqtt'; url: string } | { kind: 'nats'; servers: string[] };

/** Parses `--bus`: `inprocess` (default), `mqtt://…`/`mqtts://…`, or a comma-separated list of `nats://…`. */
export function parseBusUrl(value: string | undefined): BusConfig {
  if (value === undefined || value === '' || value === 'inprocess') return { kind: 'inprocess' };
  const parts = value.split(',').map((s) => s.trim());
  const urls = parts.map((p) => {
    try {
      return new URL(p);
    } catch {
      throw new Error(`--bus: "${p.slice(0, 80)}" is not a URL (inprocess, mqtt://host:port or nats://host:port[,nats://…])`);
    }
  });
  const protocols = new Set(urls.map((u) => u.protocol));
  if (protocols.size === 1 && (protocols.has('mqtt:') || protocols.has('mqtts:'))) {
    if (urls.length !== 1) throw new Error('--bus: name one MQTT broker (mqtt://host:port)');
    return { kind: 'mqtt', url: parts[0]! };
  }
  if (protocols.size === 1 && protocols.has('nats:')) {
    for (const u of urls) if (!u.hostname || !u.port) throw new Error(`--bus: "${u.href}" needs a host and a port (nats://host:4222)`);
    return { kind: 'nats', servers: parts };
  }
  throw new Error('--bus is inprocess, mqtt://host:port, or nats://host:port[,nats://host:port…] (one kind only)');
}

/** Opens the adapter `--bus` names; network adapters connect in the background (status down until they do). */
export async function openBus(config: BusConfig, log: BusLog): Promise<Bus> {
  if (config.kind === 'inprocess') {
    const { InProcessBus } = await import('./in-process.ts');
    return new InProcessBus();
  }
  if (config.kind === 'mqtt') {
    const { MqttBus } = await import('./mqtt.ts');
    return new MqttBus(config.url, log);
  }
  const { NatsBus } = await import('./nats.ts');
  return new NatsBus(config.servers, log);
}
