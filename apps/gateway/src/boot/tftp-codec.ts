// TFTP packets (RFC 1350 §5) with option extension (RFC 2347): blksize (RFC 2348), timeout and
// tsize (RFC 2349), windowsize (RFC 7440). Pure over Uint8Array; the socket code (tftp.ts) moves bytes.

export const OPCODE = {
  RRQ: 1,
  WRQ: 2,
  DATA: 3,
  ACK: 4,
  ERROR: 5,
  OACK: 6,
} as const;

/** RFC 1350 §5 error codes, and 8 from RFC 2347. */
export const ERROR_CODE = {
  NOT_DEFINED: 0,
  FILE_NOT_FOUND: 1,
  ACCESS_VIOLATION: 2,
  DISK_FULL: 3,
  ILLEGAL_OPERATION: 4,
  UNKNOWN_TID: 5,
  FILE_EXISTS: 6,
  NO_SUCH_USER: 7,
  OPTION_REFUSED: 8,
} as const;

/** RFC 1350 block size when no blksize option is negotiated. */
export const DEFAULT_BLKSIZE = 512;
/** RFC 2348 §2: valid blksize values. */
export const BLKSIZE_MIN = 8;
export const BLKSIZE_MAX = 65464;
/** RFC 2349 §2: timeout in seconds. */
export const TIMEOUT_MIN = 1;
export const TIMEOUT_MAX = 255;
/** RFC 7440 §3: windowsize in blocks. */
export const WINDOWSIZE_MIN = 1;
export const WINDOWSIZE_MAX = 65535;
/** Longest request we accept: a filename, a mode and a handful of options fit well within this. */
export const MAX_REQUEST_LENGTH = 512;

export type TftpMode = 'octet' | 'netascii' | 'mail';

export type TftpPacket =
  | { op: typeof OPCODE.RRQ | typeof OPCODE.WRQ; filename: string; mode: TftpMode; options: Map<string, string> }
  | { op: typeof OPCODE.DATA; block: number; data: Uint8Array }
  | { op: typeof OPCODE.ACK; block: number }
  | { op: typeof OPCODE.ERROR; code: number; message: string }
  | { op: typeof OPCODE.OACK; options: Map<string, string> };

export type TftpErrorCode = 'too_short' | 'too_long' | 'bad_opcode' | 'bad_string' | 'bad_mode' | 'duplicate_option' | 'trailing_bytes';

export class TftpError extends Error {
  constructor(
    readonly code: TftpErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'TftpError';
  }
}

/** Reads NUL-terminated netascii strings (printable ASCII only) from `at` to the end. */
function strings(b: Uint8Array, at: number): string[] {
  const out: string[] = [];
  let start = at;
  for (let i = at; i < b.length; i++) {
    const c = b[i]!;
    if (c === 0) {
      out.push(Buffer.from(b.subarray(start, i)).toString('latin1'));
      start = i + 1;
    } else if (c < 0x20 || c > 0x7e) {
      throw new TftpError('bad_string', `byte 0x${c.toString(16)} at offset ${i} is not printable ASCII`);
    }
  }
  if (start !== b.length) throw new TftpError('bad_string', `the last string (offset ${start}) has no terminating NUL`);
  return out;
}

function u16(b: Uint8Array, at: number): number {
  return (b[at]! << 8) | b[at + 1]!;
}

/** Decodes one datagram strictly. Option names are case-insensitive (RFC 2347) and kept lower-case. */
export function decodeTftp(b: Uint8Array): TftpPacket {
  if (b.length < 4) throw new TftpError('too_short', `a TFTP packet has at least 4 bytes, got ${b.length}`);
  const op = u16(b, 0);
  switch (op) {
    case OPCODE.RRQ:
    case OPCODE.WRQ: {
      if (b.length > MAX_REQUEST_LENGTH) throw new TftpError('too_long', `a request has at most ${MAX_REQUEST_LENGTH} bytes, got ${b.length}`);
      const s = strings(b, 2);
      if (s.length < 2) throw new TftpError('too_short', 'a request holds a filename and a mode');
      if (s.length % 2 !== 0) throw new TftpError('bad_string', 'an option name without a value');
      const mode = s[1]!.toLowerCase();
      if (mode !== 'octet' && mode !== 'netascii' && mode !== 'mail') throw new TftpError('bad_mode', `mode must be octet, netascii or mail, got "${s[1]}"`);
      if (s[0]!.length === 0) throw new TftpError('bad_string', 'empty filename');
      const options = new Map<string, string>();
      for (let i = 2; i < s.length; i += 2) {
        const name = s[i]!.toLowerCase();
        if (options.has(name)) throw new TftpError('duplicate_option', `option "${name}" appears twice`);
        options.set(name, s[i + 1]!);
      }
      return { op, filename: s[0]!, mode, options };
    }
    case OPCODE.DATA:
      return { op, block: u16(b, 2), data: b.slice(4) };
    case OPCODE.ACK:
      if (b.length !== 4) throw new TftpError('trailing_bytes', `an ACK has 4 bytes, got ${b.length}`);
      return { op, block: u16(b, 2) };
    case OPCODE.ERROR: {
      // RFC 1350: ErrMsg is a NUL-terminated string; some clients omit the NUL, accept that.
      const raw = b.subarray(4);
      const end = raw.indexOf(0);
      if (end !== -1 && end !== raw.length - 1) throw new TftpError('trailing_bytes', 'bytes after the error message');
      return { op, code: u16(b, 2), message: Buffer.from(raw.subarray(0, end === -1 ? raw.length : end)).toString('latin1') };
    }
    case OPCODE.OACK: {
      const s = strings(b, 2);
      if (s.length % 2 !== 0) throw new TftpError('bad_string', 'an option name without a value');
      const options = new Map<string, string>();
      for (let i = 0; i < s.length; i += 2) {
        const name = s[i]!.toLowerCase();
        if (options.has(name)) throw new TftpError('duplicate_option', `option "${name}" appears twice`);
        options.set(name, s[i + 1]!);
      }
      return { op, options };
    }
    default:
      throw new TftpError('bad_opcode', `opcode must be 1..6, got ${op}`);
  }
}

function header(op: number, n: number, extra: number): Uint8Array {
  const b = new Uint8Array(4 + extra);
  b[0] = op >> 8;
  b[1] = op & 0xff;
  b[2] = (n >> 8) & 0xff;
  b[3] = n & 0xff;
  return b;
}

function asciiz(parts: string[]): Uint8Array {
  return Buffer.from(parts.map((p) => `${p}\0`).join(''), 'latin1');
}

export function encodeData(block: number, data: Uint8Array): Uint8Array {
  const b = header(OPCODE.DATA, block & 0xffff, data.length);
  b.set(data, 4);
  return b;
}

export function encodeAck(block: number): Uint8Array {
  return header(OPCODE.ACK, block & 0xffff, 0);
}

export function encodeError(code: number, message: string): Uint8Array {
  // Messages are ours; keep them printable ASCII.
  const text = asciiz([message.replace(/[^\x20-\x7e]/g, '?')]);
  const b = header(OPCODE.ERROR, code, text.length);
  b.set(text, 4);
  return b;
}

export function encodeOack(options: Map<string, string>): Uint8Array {
  const text = asciiz([...options].flat());
  const b = new Uint8Array(2 + text.length);
  b[1] = OPCODE.OACK;
  b.set(text, 2);
  return b;
}

export function encodeRequest(op: typeof OPCODE.RRQ | typeof OPCODE.WRQ, filename: string, mode: TftpMode, options = new Map<string, string>()): Uint8Array {
  const text = asciiz([filename, mode, ...[...options].flat()]);
  const b = new Uint8Array(2 + text.length);
  b[1] = op;
  b.set(text, 2);
  return b;
}

/** What the server uses for one transfer after option negotiation. */
export interface TransferParams {
  blksize: number;
  /** Seconds between retransmissions. */
  timeoutSec: number;
  windowsize: number;
  /** The options to acknowledge (OACK); empty means no OACK, plain RFC 1350. */
  acknowledged: Map<string, string>;
}

export interface NegotiationLimits {
  /** Largest block we send (the LAN's MTU bounds what is useful; RFC 2348 allows up to 65464). */
  maxBlksize: number;
  maxWindowsize: number;
  defaultTimeoutSec: number;
}

function integer(v: string): number | undefined {
  return /^\d{1,10}$/.test(v) ? Number(v) : undefined;
}

/**
 * RFC 2347 negotiation for a read request of a file of `size` bytes. Unknown options and options
 * with values outside their RFC range are ignored (not acknowledged), which RFC 2347 §4 allows;
 * blksize and windowsize larger than our limit are answered with our limit (RFC 2348 §2, RFC 7440 §3).
 */
export function negotiate(options: Map<string, string>, size: number, limits: NegotiationLimits): TransferParams {
  const p: TransferParams = { blksize: DEFAULT_BLKSIZE, timeoutSec: limits.defaultTimeoutSec, windowsize: 1, acknowledged: new Map() };
  const blksize = integer(options.get('blksize') ?? '');
  if (blksize !== undefined && blksize >= BLKSIZE_MIN && blksize <= BLKSIZE_MAX) {
    p.blksize = Math.min(blksize, limits.maxBlksize);
    p.acknowledged.set('blksize', String(p.blksize));
  }
  const timeout = integer(options.get('timeout') ?? '');
  if (timeout !== undefined && timeout >= TIMEOUT_MIN && timeout <= TIMEOUT_MAX) {
    p.timeoutSec = timeout;
    p.acknowledged.set('timeout', String(timeout));
  }
  // RFC 2349 §3: in a read request the client sends 0 and the server answers the file's size.
  if (options.get('tsize') === '0') p.acknowledged.set('tsize', String(size));
  const windowsize = integer(options.get('windowsize') ?? '');
  if (windowsize !== undefined && windowsize >= WINDOWSIZE_MIN && windowsize <= WINDOWSIZE_MAX) {
    p.windowsize = Math.min(windowsize, limits.maxWindowsize);
    p.acknowledged.set('windowsize', String(p.windowsize));
  }
  return p;
}
