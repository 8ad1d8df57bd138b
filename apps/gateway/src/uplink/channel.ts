// The persistent command channel to the master (WebSocket, signed upgrade). Reconnects with backoff
// for ever; while it is down, decisions already taken stay enforced and new rows stay Pending.
import type { Logger } from 'pino';
import WebSocket from 'ws';
import type { GatewayMetrics } from '../status/metrics.ts';
import { type Backoff, backoffDelay } from './registrar.ts';

export type ChannelCommand =
  | { type: 'clear'; mac: string }
  | { type: 'unblock'; mac: string }
  | { type: 'block'; tipsId: string | null; macs: string[]; reason?: string };

export class ChannelMessageError extends Error {
  readonly code = 'bad_channel_message' as const;
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** Validates one master → gateway message. Unknown or malformed messages raise ChannelMessageError. */
export function parseCommand(text: string): { command: ChannelCommand | null; ref: unknown } {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(text);
  } catch {
    throw new ChannelMessageError('channel message is not JSON');
  }
  if (typeof j !== 'object' || j === null) throw new ChannelMessageError('channel message is not an object');
  const ref = j.id ?? j.ref ?? null;
  const mac = (v: unknown, field: string) => {
    if (typeof v !== 'string' || !MAC.test(v.toLowerCase())) throw new ChannelMessageError(`${field} must be a MAC address`);
    return v.toLowerCase();
  };
  switch (j.type) {
    case 'clear':
    case 'unblock':
      return { command: { type: j.type, mac: mac(j.mac, 'mac') }, ref };
    case 'block': {
      const macs = j.macs === undefined ? [] : Array.isArray(j.macs) ? j.macs.map((m, i) => mac(m, `macs[${i}]`)) : null;
      if (macs === null) throw new ChannelMessageError('macs must be a list');
      const tipsId = typeof j.tipsId === 'string' ? j.tipsId : null;
      if (tipsId === null && macs.length === 0) throw new ChannelMessageError('block needs a tipsId or macs');
      return { command: { type: 'block', tipsId, macs, ...(typeof j.reason === 'string' ? { reason: j.reason } : {}) }, ref };
    }
    case 'hello':
    case 'ack':
    case 'ping':
      return { command: null, ref };
    default:
      throw new ChannelMessageError(`unknown channel message type ${JSON.stringify(j.type)}`);
  }
}

export interface ChannelOptions {
  /** Fresh URL and signed headers for each connection attempt (nonces are single-use); TLS client options for wss://. */
  connectInfo: () => { url: string; headers: Record<string, string>; tls?: { cert: string; key: string; ca: string } };
  onCommand: (c: ChannelCommand) => Promise<void>;
  onConnected: () => void;
  log: Logger;
  metrics: GatewayMetrics;
  backoff: Backoff;
}

export class Channel {
  private ws: WebSocket | undefined;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private stopped = false;
  connected = false;

  constructor(private readonly o: ChannelOptions) {}

  start(): void {
    this.connect();
  }

  private connect(): void {
    if (this.stopped) return;
    const { url, headers, tls } = this.o.connectInfo();
    // Over wss:// the gateway's certificate goes with the upgrade and the master is verified against ca.pem.
    const ws = new WebSocket(url, { headers, handshakeTimeout: 10_000, ...(tls ? { cert: tls.cert, key: tls.key, ca: tls.ca } : {}) });
    this.ws = ws;
    ws.on('open', () => {
      this.failures = 0;
      this.connected = true;
      this.o.metrics.uplinkConnected.set(1);
      this.o.log.info('channel to master open');
      ws.send(JSON.stringify({ type: 'hello' }));
      this.o.onConnected();
    });
    ws.on('message', (data) => {
      let parsed: ReturnType<typeof parseCommand>;
      try {
        parsed = parseCommand(data.toString());
      } catch (err) {
        this.o.log.warn({ msg: (err as Error).message }, 'channel message ignored');
        return;
      }
      if (!parsed.command) return;
      const cmd = parsed.command;
      this.o
        .onCommand(cmd)
        .then(() => {
          if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'ack', ref: parsed.ref }));
        })
        .catch((err) => this.o.log.error({ err, command: cmd.type }, 'channel command failed'));
    });
    ws.on('error', (err) => this.o.log.debug({ msg: err.message }, 'channel error'));
    ws.on('unexpected-response', (_req, res) => {
      this.o.log.warn({ status: res.statusCode }, 'master refused the channel');
      ws.terminate();
    });
    ws.on('close', () => {
      if (this.connected) this.o.log.warn('channel to master closed');
      this.connected = false;
      this.o.metrics.uplinkConnected.set(0);
      if (this.stopped) return;
      const delay = backoffDelay(this.o.backoff, this.failures++);
      this.timer = setTimeout(() => this.connect(), delay);
    });
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.ws?.terminate();
  }
}
