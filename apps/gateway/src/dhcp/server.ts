// DHCP over node:dgram. Node has no SO_BINDTODEVICE, so: one socket on 0.0.0.0:67 receives the
// clients' broadcasts, one on <LAN address>:67 receives unicast renewals and sends every reply (a
// socket bound to the LAN address makes the kernel send 255.255.255.255 out of the LAN interface).
// DHCP arriving on any other interface is dropped by the enforcer's input rules.
// Group commit: the datagrams that arrived in one turn of the event loop are answered together —
// their lease writes (and the table updates of their lease events) are one transaction, whose fsync
// runs on the thread pool; their replies leave only once it is done, so an ACK still never goes out
// for a lease that is not on disk, but a burst pays one fsync, and the event loop keeps reading
// datagrams meanwhile.
// Logs: one info line when an address is newly bound to a client (a human wants to see a new
// lease); every other message and reply only at debug level (built only when debug is on) — the
// counters (tips_gateway_dhcp_{received,sent,dropped,malformed}_total) are the per-packet record.
import dgram from 'node:dgram';
import type { Logger } from 'pino';
import type { GatewayMetrics } from '../status/metrics.ts';
import { chaddrToMac, decodeDhcp, encodeDhcp } from './codec.ts';
import { DHCP_MESSAGE_TYPE, SERVER_PORT } from './constants.ts';
import { DhcpError } from './errors.ts';
import type { LeasePool } from './leases.ts';
import { type Admission, type LeaseEvent, type ResponderConfig, respond } from './responder.ts';

const TYPE_NAMES = new Map<number, string>(Object.entries(DHCP_MESSAGE_TYPE).map(([k, v]) => [v, k]));
/** Most datagrams answered by one commit. */
const MAX_GROUP = 256;

type Counter = { inc(n?: number): void };

interface Outgoing {
  bytes: Uint8Array;
  to: { address: string; port: number };
  sent: Counter;
}

export interface DhcpServerOptions {
  pool: LeasePool;
  config: ResponderConfig;
  admission: Admission;
  onEvent: (e: LeaseEvent) => void;
  log: Logger;
  metrics: GatewayMetrics;
  now?: () => number;
  /** Port to listen on; 67 unless a test says otherwise. */
  port?: number;
}

export class DhcpServer {
  private sockets: dgram.Socket[] = [];
  private sender: dgram.Socket | undefined;
  private queue: Uint8Array[] = [];
  /** Counter children by label value, resolved once (the label lookup is per packet otherwise). */
  private readonly counters = new Map<string, Counter>();
  private readonly now: () => number;

  constructor(private readonly o: DhcpServerOptions) {
    this.now = o.now ?? Date.now;
  }

  private counter(metric: 'dhcpReceived' | 'dhcpSent', type: string): Counter {
    const k = `${metric}|${type}`;
    let c = this.counters.get(k);
    if (!c) {
      c = this.o.metrics[metric].labels({ type });
      this.counters.set(k, c);
    }
    return c;
  }

  async start(): Promise<void> {
    const port = this.o.port ?? SERVER_PORT;
    const open = (address: string) =>
      new Promise<dgram.Socket>((resolve, reject) => {
        const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
        s.once('error', reject);
        s.bind({ address, port }, () => {
          s.off('error', reject);
          s.on('error', (err) => this.o.log.error({ err }, 'dhcp socket error'));
          s.setBroadcast(true);
          s.on('message', (msg) => this.enqueue(msg));
          resolve(s);
        });
      });
    const any = await open('0.0.0.0');
    this.sockets.push(any);
    this.sender = await open(this.o.config.serverIp);
    this.sockets.push(this.sender);
    this.o.log.info({ port, serverIp: this.o.config.serverIp }, 'dhcp server listening');
  }

  /** Datagrams wait for the end of this turn of the event loop, then are answered as one group. */
  private enqueue(msg: Uint8Array): void {
    this.queue.push(msg);
    if (this.queue.length === 1) setImmediate(() => this.drain());
  }

  private drain(): void {
    while (this.queue.length > 0) this.handleGroup(this.queue.splice(0, MAX_GROUP), false);
  }

  /** Handles one datagram at once (its lease write committed before its reply is sent). Never throws. */
  handle(msg: Uint8Array): void {
    this.handleGroup([msg], true);
  }

  /**
   * Handles datagrams together: every decision, lease write and lease event (the table learns the
   * lease) in one transaction; the replies are sent once it is durable — at once with `sync` (an
   * fsync on the event loop), else when the fsync on the thread pool is done. Never throws:
   * malformed input is counted and dropped; a failed commit or fsync sends no reply of the group.
   */
  handleGroup(msgs: Uint8Array[], sync: boolean): void {
    const out: Outgoing[] = [];
    const send = (err: Error | null) => {
      if (err) {
        this.o.metrics.dhcpDropped.inc({ reason: 'internal_error' }, out.length);
        this.o.log.error({ err, messages: msgs.length }, 'dhcp leases not made durable: no reply sent');
        return;
      }
      for (const o of out) {
        this.sender?.send(o.bytes, o.to.port, o.to.address, (e) => {
          if (e) this.o.log.warn({ err: e, to: o.to }, 'dhcp reply not sent');
          else o.sent.inc();
        });
      }
    };
    const debug = this.o.log.isLevelEnabled('debug');
    const group = () => {
      const events: LeaseEvent[] = [];
      for (const msg of msgs) this.decide(msg, out, events, debug);
      for (const e of events) this.emit(e);
    };
    try {
      if (sync) {
        this.o.pool.atomically(group);
        send(null);
      } else {
        this.o.pool.atomically(group, send);
      }
    } catch (err) {
      send(err as Error);
    }
  }

  private emit(e: LeaseEvent): void {
    try {
      this.o.onEvent(e);
    } catch (err) {
      this.o.log.error({ err, mac: e.mac }, 'dhcp lease event failed');
    }
  }

  /** One datagram's answer, queued in `out` (its lease write is part of the caller's transaction). */
  private decide(msg: Uint8Array, out: Outgoing[], events: LeaseEvent[], debug: boolean): void {
    let req: ReturnType<typeof decodeDhcp>;
    try {
      req = decodeDhcp(msg);
    } catch (err) {
      const code = err instanceof DhcpError ? err.code : 'internal';
      this.o.metrics.dhcpMalformed.inc({ code });
      if (debug) this.o.log.debug({ code, length: msg.length }, 'malformed dhcp packet dropped');
      return;
    }
    const type = TYPE_NAMES.get(req.options.messageType) ?? 'unknown';
    this.counter('dhcpReceived', type).inc();
    try {
      // A savepoint per message: a failure undoes this message's writes only.
      const res = this.o.pool.atomically(() => respond(req, this.o.pool, this.o.config, this.o.admission, this.now()));
      if (res.dropped) {
        this.o.metrics.dhcpDropped.inc({ reason: res.dropped });
        if (debug) this.o.log.debug({ mac: chaddrToMac(req.chaddr), type, reason: res.dropped }, 'dhcp message not answered');
      }
      if (res.reply && res.to && this.sender) {
        const replyType = TYPE_NAMES.get(res.reply.options.messageType) ?? 'unknown';
        out.push({ bytes: encodeDhcp(res.reply), to: res.to, sent: this.counter('dhcpSent', replyType) });
        if (debug) this.o.log.debug({ mac: chaddrToMac(req.chaddr), type, reply: replyType, yiaddr: res.reply.yiaddr, to: res.to.address }, 'dhcp');
        if (res.fresh) this.o.log.info({ mac: chaddrToMac(req.chaddr), ip: res.reply.yiaddr, hostname: req.options.hostName ?? null }, 'dhcp lease bound');
      }
      if (res.event) events.push(res.event);
    } catch (err) {
      // A bug or a storage failure must not take the daemon down: count it and keep serving.
      this.o.metrics.dhcpDropped.inc({ reason: 'internal_error' });
      this.o.log.error({ err, type }, 'dhcp handling failed');
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.sockets.map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.sockets = [];
    this.sender = undefined;
  }
}
