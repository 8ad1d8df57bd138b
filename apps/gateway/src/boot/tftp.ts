// The gateway's TFTP server (RFC 1350, options RFC 2347/2348/2349/7440): read-only, octet only, and
// only the iPXE boot programs (files.ts). Only Active interfaces are answered (`admit`); anything else
// gets no packet at all. Each transfer runs on a socket of its own (a new TID, RFC 1350 §4) bound
// to the LAN address; the number of transfers at once is bounded.
import dgram from 'node:dgram';
import type { Logger } from 'pino';
import type { GatewayMetrics } from '../status/metrics.ts';
import { bootProgramPath, lookupBootProgram, type SmallFileCache } from './files.ts';
import {
  decodeTftp,
  ERROR_CODE,
  encodeData,
  encodeError,
  encodeOack,
  type NegotiationLimits,
  negotiate,
  OPCODE,
  type TftpPacket,
  TftpError,
  type TransferParams,
} from './tftp-codec.ts';

export const TFTP_PORT = 69;

export interface TftpServerOptions {
  /** The LAN address: the only address the server listens and sends on. */
  address: string;
  port?: number;
  ipxeDir: string;
  files: SmallFileCache;
  /** The requester's MAC when its interface is Active on this gateway; undefined → no answer at all. */
  admit: (ip: string) => string | undefined;
  limits?: Partial<NegotiationLimits> & { maxTransfers?: number; retries?: number };
  log: Logger;
  metrics: GatewayMetrics;
}

const DEFAULT_LIMITS = { maxBlksize: 1468, maxWindowsize: 64, defaultTimeoutSec: 1, maxTransfers: 64, retries: 5 };

type Outcome = 'ok' | 'refused' | 'not_found' | 'denied' | 'busy' | 'timeout' | 'aborted' | 'error';

export class TftpServer {
  private socket: dgram.Socket | undefined;
  private readonly transfers = new Map<string, Transfer>();
  private readonly limits: typeof DEFAULT_LIMITS;

  constructor(private readonly o: TftpServerOptions) {
    this.limits = { ...DEFAULT_LIMITS, ...o.limits };
  }

  /** The bound port (69 unless the options say otherwise, 0 = any). */
  get port(): number {
    return this.socket?.address().port ?? 0;
  }

  get activeTransfers(): number {
    return this.transfers.size;
  }

  async start(): Promise<void> {
    this.socket = await bind(this.o.address, this.o.port ?? TFTP_PORT);
    this.socket.on('error', (err) => this.o.log.error({ err }, 'tftp socket error'));
    this.socket.on('message', (msg, rinfo) => {
      this.request(msg, rinfo).catch((err) => this.o.log.error({ err }, 'tftp request failed'));
    });
    this.o.log.info({ address: this.o.address, port: this.port, ipxeDir: this.o.ipxeDir }, 'tftp server listening');
  }

  async stop(): Promise<void> {
    for (const t of [...this.transfers.values()]) t.finish('aborted');
    await new Promise<void>((r) => (this.socket ? this.socket.close(() => r()) : r()));
    this.socket = undefined;
  }

  private count(outcome: Outcome): void {
    this.o.metrics.bootRequests.inc({ kind: 'tftp', outcome });
  }

  private async request(msg: Buffer, from: dgram.RemoteInfo): Promise<void> {
    const mac = this.o.admit(from.address);
    if (!mac) {
      // Pending, Blocked or unknown: not a single byte back (a retransmitted RRQ is answered once Active).
      this.count('refused');
      this.o.log.debug({ ip: from.address }, 'tftp request from an interface that is not Active: ignored');
      return;
    }
    const key = `${from.address}:${from.port}`;
    if (this.transfers.has(key)) return; // the client repeated its request; the transfer retransmits on its own
    let p: TftpPacket;
    try {
      p = decodeTftp(msg);
    } catch (err) {
      if (!(err instanceof TftpError)) throw err;
      this.count('error');
      this.reply(from, ERROR_CODE.ILLEGAL_OPERATION, `malformed request: ${err.message}`);
      return;
    }
    if (p.op === OPCODE.WRQ) {
      this.count('denied');
      this.reply(from, ERROR_CODE.ACCESS_VIOLATION, 'this server is read-only');
      return;
    }
    if (p.op !== OPCODE.RRQ) {
      this.count('error');
      this.reply(from, ERROR_CODE.ILLEGAL_OPERATION, 'expected a read request');
      return;
    }
    if (p.mode !== 'octet') {
      this.count('denied');
      this.reply(from, ERROR_CODE.ILLEGAL_OPERATION, `only octet mode is served (boot programs are binary), not ${p.mode}`);
      return;
    }
    const found = lookupBootProgram(p.filename);
    if (found.kind === 'traversal') {
      this.count('denied');
      this.o.log.warn({ mac, ip: from.address, filename: p.filename.slice(0, 100) }, 'tftp path traversal refused');
      this.reply(from, ERROR_CODE.ACCESS_VIOLATION, 'only boot programs by plain name are served');
      return;
    }
    const file = found.kind === 'ok' ? await this.o.files.read(bootProgramPath(this.o.ipxeDir, found.name)) : undefined;
    if (!file) {
      this.count('not_found');
      this.reply(from, ERROR_CODE.FILE_NOT_FOUND, `${p.filename.slice(0, 100)} is not served here`);
      return;
    }
    if (this.transfers.size >= this.limits.maxTransfers) {
      this.count('busy');
      this.reply(from, ERROR_CODE.NOT_DEFINED, 'server busy, try again');
      return;
    }
    const params = negotiate(p.options, file.data.length, this.limits);
    const sock = await bind(this.o.address, 0);
    const t = new Transfer(sock, from, file.data, params, this.limits.retries, (outcome) => {
      this.transfers.delete(key);
      this.o.metrics.bootTftpTransfers.set(this.transfers.size);
      this.count(outcome);
      if (outcome === 'ok') this.o.metrics.bootBytes.inc({ kind: 'tftp' }, file.data.length);
      this.o.log.info({ mac, ip: from.address, file: p.filename, bytes: file.data.length, blksize: params.blksize, windowsize: params.windowsize, outcome }, 'tftp transfer ended');
    });
    this.transfers.set(key, t);
    this.o.metrics.bootTftpTransfers.set(this.transfers.size);
    t.begin();
  }

  private reply(to: dgram.RemoteInfo, code: number, message: string): void {
    this.socket?.send(encodeError(code, message), to.port, to.address);
  }
}

function bind(address: string, port: number): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.once('error', reject);
    s.bind({ address, port, exclusive: true }, () => {
      s.off('error', reject);
      resolve(s);
    });
  });
}

/** One read transfer: OACK (when options were acknowledged), then windows of DATA, each window acknowledged. */
class Transfer {
  private readonly blocks: number;
  /** Highest block (absolute, from 1) the client acknowledged; 0 before the first; -1 while the OACK is unacknowledged. */
  private acked: number;
  private retries = 0;
  private timer: NodeJS.Timeout | undefined;
  private done = false;

  constructor(
    private readonly sock: dgram.Socket,
    private readonly peer: dgram.RemoteInfo,
    private readonly data: Buffer,
    private readonly params: TransferParams,
    private readonly maxRetries: number,
    private readonly onEnd: (outcome: Outcome) => void,
  ) {
    // The last block is shorter than blksize, possibly empty (RFC 1350 §6).
    this.blocks = Math.floor(data.length / params.blksize) + 1;
    this.acked = params.acknowledged.size > 0 ? -1 : 0;
    sock.on('message', (msg, rinfo) => this.onPacket(msg, rinfo));
    sock.on('error', () => this.finish('error'));
  }

  begin(): void {
    this.transmit();
  }

  private transmit(): void {
    if (this.acked === -1) {
      this.send(encodeOack(this.params.acknowledged));
    } else {
      const last = Math.min(this.acked + this.params.windowsize, this.blocks);
      for (let k = this.acked + 1; k <= last; k++) {
        const start = (k - 1) * this.params.blksize;
        this.send(encodeData(k, this.data.subarray(start, Math.min(start + this.params.blksize, this.data.length))));
      }
    }
    this.arm();
  }

  private arm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.onTimeout(), this.params.timeoutSec * 1000);
  }

  private onTimeout(): void {
    if (++this.retries > this.maxRetries) {
      // Close only once the error is out, or the kernel drops it with the socket.
      this.sock.send(encodeError(ERROR_CODE.NOT_DEFINED, 'timed out waiting for an acknowledgement'), this.peer.port, this.peer.address, () => this.finish('timeout'));
      return;
    }
    this.transmit();
  }

  private send(b: Uint8Array): void {
    if (!this.done) this.sock.send(b, this.peer.port, this.peer.address);
  }

  private onPacket(msg: Buffer, from: dgram.RemoteInfo): void {
    if (from.address !== this.peer.address || from.port !== this.peer.port) {
      // RFC 1350 §4: a packet from another TID is answered with an error, the transfer goes on.
      this.sock.send(encodeError(ERROR_CODE.UNKNOWN_TID, 'unknown transfer ID'), from.port, from.address);
      return;
    }
    let p: TftpPacket;
    try {
      p = decodeTftp(msg);
    } catch {
      return; // garbage from the peer: the retransmission timer covers a lost ACK
    }
    if (p.op === OPCODE.ERROR) {
      this.finish('aborted');
      return;
    }
    if (p.op !== OPCODE.ACK) return;
    // Block numbers are 16 bits and roll over; map the ACK to the absolute block in the current window.
    const base = Math.max(this.acked, 0);
    let k = -1;
    for (let c = base; c <= Math.min(base + this.params.windowsize, this.blocks); c++) {
      if ((c & 0xffff) === p.block) {
        k = c;
        break;
      }
    }
    if (this.acked === -1 && p.block === 0) k = 0;
    // A repeated ACK of an old block is ignored (no Sorcerer's Apprentice, RFC 1123 §4.2.3.1).
    if (k < 0 || k <= this.acked) return;
    this.acked = k;
    this.retries = 0;
    if (this.acked >= this.blocks) {
      this.finish('ok');
      return;
    }
    // RFC 7440 §4: an ACK inside the window restarts the window after the acknowledged block.
    this.transmit();
  }

  finish(outcome: Outcome): void {
    if (this.done) return;
    this.done = true;
    if (this.timer) clearTimeout(this.timer);
    try {
      this.sock.close();
    } catch {
      // already closed
    }
    this.onEnd(outcome);
  }
}
