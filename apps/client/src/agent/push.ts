/**
 * T15 S9: the metal's MQTT subscription. mqtts with the metal's enrolled certificate (the broker's
 * ACL lets it read only `tips/metal/<its TIPS ID>`), the broker verified against the master's CA.
 * A message is a hint — it wakes the agent, which then pulls and verifies; nothing in it is acted
 * on by itself. A lost connection is retried with exponential backoff and jitter, forever, until
 * `stop()`; a reconnect also wakes the agent (what was published meanwhile is fetched by the pull).
 */
import mqtt, { type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import { backoffDelay } from './servers.ts';

/** Contract C notification: `{ glazes, spaceId, reason, notBefore }`. */
export interface PushHint {
  glazes: string[];
  spaceId: string;
  reason: 'glaze_set' | 'rollback';
  notBefore: string | null;
}

/** Parses a notification; anything else is dropped (a hint we cannot read is no hint). */
export function parseHint(payload: Uint8Array): PushHint | undefined {
  if (payload.length > 64 * 1024) return undefined;
  let o: unknown;
  try {
    o = JSON.parse(Buffer.from(payload).toString('utf8'));
  } catch {
    return undefined;
  }
  if (!o || typeof o !== 'object' || Array.isArray(o)) return undefined;
  const h = o as Record<string, unknown>;
  if (!Array.isArray(h.glazes) || !h.glazes.every((g) => typeof g === 'string' && g.length <= 64) || h.glazes.length > 256) return undefined;
  if (typeof h.spaceId !== 'string' || h.spaceId.length > 64) return undefined;
  if (h.reason !== 'glaze_set' && h.reason !== 'rollback') return undefined;
  if (h.notBefore !== null && h.notBefore !== undefined && (typeof h.notBefore !== 'string' || Number.isNaN(Date.parse(h.notBefore)))) return undefined;
  return { glazes: h.glazes as string[], spaceId: h.spaceId, reason: h.reason, notBefore: (h.notBefore as string | null | undefined) ?? null };
}

export interface PushOptions {
  url: string;
  topic: string;
  /** Read at every (re)connection: a re-enrollment's new certificate is used from the next one. */
  tls: () => { ca: string; cert: string; key: string };
  clientId: string;
  log: Logger;
  onHint: (h: PushHint) => void;
  /** Called once subscribed (also after every reconnection). */
  onSubscribed?: () => void;
  /** Every change of the subscription: subscribed, or lost (with why) and reconnecting. */
  onState?: (subscribed: boolean, why: string | null) => void;
  baseMs?: number;
  maxMs?: number;
}

export interface PushListener {
  /** Subscribed right now (the broker granted the topic). */
  readonly subscribed: boolean;
  readonly url: string;
  stop(): Promise<void>;
}

export function startPush(o: PushOptions): PushListener {
  const u = new URL(o.url);
  if (u.protocol !== 'mqtts:') throw new Error(`push: expected an mqtts:// URL, came ${u.protocol}`);
  let client: MqttClient | undefined;
  let subscribed = false;
  let stopped = false;
  let attempt = 0;
  let timer: NodeJS.Timeout | undefined;

  const schedule = (why: string) => {
    if (stopped || timer) return;
    const ms = backoffDelay(attempt++, { baseMs: o.baseMs ?? 1_000, maxMs: o.maxMs ?? 60_000 });
    o.log.warn({ event: 'push_reconnect', url: o.url, why, attempt, retryInMs: ms }, `MQTT push unavailable (${why}); reconnecting in ${ms} ms (pull continues meanwhile)`);
    timer = setTimeout(() => {
      timer = undefined;
      connect();
    }, ms);
  };

  const connect = () => {
    if (stopped) return;
    const tls = o.tls();
    const c = mqtt.connect({
      protocol: 'mqtts',
      host: u.hostname.replace(/^\[|\]$/g, ''),
      port: Number(u.port || 8883),
      ca: tls.ca,
      cert: tls.cert,
      key: tls.key,
      rejectUnauthorized: true,
      clientId: o.clientId,
      clean: true,
      // Reconnection is ours (backoff with jitter), not mqtt.js's fixed period.
      reconnectPeriod: 0,
      connectTimeout: 15_000,
      keepalive: 30,
    });
    client = c;
    let lost = false;
    const lose = (why: string) => {
      if (lost) return;
      lost = true;
      subscribed = false;
      c.end(true);
      o.onState?.(false, why);
      schedule(why);
    };
    c.on('connect', () => {
      c.subscribe(o.topic, { qos: 1 }, (err, granted) => {
        const g = granted?.[0];
        if (err || !g || g.qos === 128) {
          o.log.error({ event: 'push_subscribe_refused', topic: o.topic, err: err?.message }, 'the broker refused our topic');
          lose('subscribe refused');
          return;
        }
        attempt = 0;
        subscribed = true;
        o.log.info({ event: 'push_subscribed', url: o.url, topic: o.topic }, `subscribed to ${o.topic}`);
        o.onState?.(true, null);
        o.onSubscribed?.();
      });
    });
    c.on('message', (topic, payload) => {
      if (topic !== o.topic) return;
      const h = parseHint(payload);
      if (!h) {
        o.log.warn({ event: 'push_hint_unreadable', bytes: payload.length }, 'an unreadable notification; ignored');
        return;
      }
      o.log.info({ event: 'push_hint', reason: h.reason, glazes: h.glazes, space: h.spaceId }, `notification (${h.reason}): pulling`);
      o.onHint(h);
    });
    c.on('error', (e) => lose(e.message));
    c.on('close', () => lose('connection closed'));
    c.on('offline', () => lose('offline'));
  };

  connect();
  return {
    get subscribed() {
      return subscribed;
    },
    url: o.url,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      subscribed = false;
      await client?.endAsync(true).catch(() => undefined);
    },
  };
}
