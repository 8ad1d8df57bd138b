// DHCP over node:dgram. Node has no SO_BINDTODEVICE, so: one socket on 0.0.0.0:67 receives the
// clients' broadcasts, one on <LAN address>:67 receives unicast renewals and sends every reply (a
// socket bound to the LAN address makes the kernel send 255.255.255.255 out of the LAN interface).
// DHCP arriving on any other interface is dropped by the enforcer's input rules.
import dgram from 'node:dgram';
import type { Logger } from 'pino';
import type { GatewayMetrics } from '../status/metrics.ts';
import { chaddrToMac, decodeDhcp, encodeDhcp } from './codec.ts';
import { DHCP_MESSAGE_TYPE, SERVER_PORT } from './constants.ts';
import { DhcpError } from './errors.ts';
import type { LeasePool } from './leases.ts';
import { type Admission, type LeaseEvent, type ResponderConfig, respond } from './responder.ts';

const TYPE_NAMES = new Map<number, string>(Object.entries(DHCP_MESSAGE_TYPE).map(([k, v]) => [v, k]));

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

  constructor(private readonly o: DhcpServerOptions) {}

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
          s.on('message', (msg) => this.handle(msg));
          resolve(s);
        });
      });
    const any = await open('0.0.0.0');
    this.sockets.push(any);
    this.sender = await open(this.o.config.serverIp);
    this.sockets.push(this.sender);
    this.o.log.info({ port, serverIp: this.o.config.serverIp }, 'dhcp server listening');
  }

  /** Handles one datagram. Never throws: malformed input is counted and dropped. */
  handle(msg: Uint8Array): void {
    let req: ReturnType<typeof decodeDhcp>;
    try {
      req = decodeDhcp(msg);
    } catch (err) {
      const code = err instanceof DhcpError ? err.code : 'internal';
      this.o.metrics.dhcpMalformed.inc({ code });
      this.o.log.debug({ code, length: msg.length }, 'malformed dhcp packet dropped');
      return;
    }
    const type = TYPE_NAMES.get(req.options.messageType) ?? 'unknown';
    this.o.metrics.dhcpReceived.inc({ type });
    try {
      const res = respond(req, this.o.pool, this.o.config, this.o.admission, (this.o.now ?? Date.now)());
      if (res.dropped) {
        this.o.metrics.dhcpDropped.inc({ reason: res.dropped });
        this.o.log.debug({ mac: chaddrToMac(req.chaddr), type, reason: res.dropped }, 'dhcp message not answered');
      }
      if (res.reply && res.to && this.sender) {
        const bytes = encodeDhcp(res.reply);
        const replyType = TYPE_NAMES.get(res.reply.options.messageType) ?? 'unknown';
        this.sender.send(bytes, res.to.port, res.to.address, (err) => {
          if (err) this.o.log.warn({ err, to: res.to }, 'dhcp reply not sent');
          else this.o.metrics.dhcpSent.inc({ type: replyType });
        });
        this.o.log.info({ mac: chaddrToMac(req.chaddr), type, reply: replyType, yiaddr: res.reply.yiaddr, to: res.to.address }, 'dhcp');
      }
      if (res.event) this.o.onEvent(res.event);
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
