// Strict DHCP codec (RFC 2131 header, RFC 2132 options, RFC 4578 PXE options, RFC 3396 long options).
// Pure functions over Uint8Array; anything malformed raises DhcpError with a stable code.
import {
  BOOTP_HEADER_LENGTH,
  BOOTREPLY,
  BOOTREQUEST,
  CHADDR_LENGTH,
  DHCP_MESSAGE_TYPE,
  type DhcpMessageType,
  FILE_LENGTH,
  HLEN_ETHERNET,
  HTYPE_ETHERNET,
  MAGIC_COOKIE,
  MAX_MESSAGE_LENGTH,
  MIN_ENCODED_LENGTH,
  OPTION,
  OPTIONS_OFFSET,
  SNAME_LENGTH,
} from './constants.ts';
import { DhcpError } from './errors.ts';

/** Dotted-quad IPv4 address. */
export type Ipv4 = string;

export interface DhcpOptions {
  messageType: DhcpMessageType; // 53
  serverIdentifier?: Ipv4; // 54
  leaseTime?: number; // 51, seconds
  renewalTime?: number; // 58
  rebindingTime?: number; // 59
  subnetMask?: Ipv4; // 1
  routers?: Ipv4[]; // 3
  dnsServers?: Ipv4[]; // 6
  broadcastAddress?: Ipv4; // 28
  hostName?: string; // 12
  requestedIp?: Ipv4; // 50
  parameterRequestList?: number[]; // 55
  message?: string; // 56
  maxMessageSize?: number; // 57
  vendorClass?: string; // 60
  clientIdentifier?: Uint8Array; // 61
  tftpServerName?: string; // 66
  bootfileName?: string; // 67
  clientArchitectures?: number[]; // 93
  clientMachineId?: Uint8Array; // 97 (type 0 + 16-byte GUID)
  /** Options this codec does not interpret, in order of first appearance. */
  other: { code: number; data: Uint8Array }[];
}

export interface DhcpPacket {
  op: typeof BOOTREQUEST | typeof BOOTREPLY;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  flags: number;
  ciaddr: Ipv4;
  yiaddr: Ipv4;
  siaddr: Ipv4;
  giaddr: Ipv4;
  /** Client hardware address: the first `hlen` bytes of the 16-byte chaddr field. */
  chaddr: Uint8Array;
  sname: string;
  file: string;
  options: DhcpOptions;
}

const MESSAGE_TYPES = new Set<number>(Object.values(DHCP_MESSAGE_TYPE));

// ---------- decoding ----------

function ipAt(b: Uint8Array, o: number): Ipv4 {
  return `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
}

/** NUL-terminated field (sname, file): text up to the first NUL; the rest must be zero padding. */
function cString(b: Uint8Array, start: number, length: number, field: string): string {
  const slice = b.subarray(start, start + length);
  let end = slice.indexOf(0);
  if (end === -1) end = length;
  for (let i = end; i < length; i++) {
    if (slice[i] !== 0) throw new DhcpError('bad_field', field, `${field} has bytes after its terminating NUL`);
  }
  return latin1(slice.subarray(0, end));
}

function latin1(b: Uint8Array): string {
  let s = '';
  for (const c of b) s += String.fromCharCode(c);
  return s;
}

type OptionDecoder = (data: Uint8Array, into: DhcpOptions, name: string) => void;

function fixedLength(data: Uint8Array, n: number, name: string): void {
  if (data.length !== n) throw new DhcpError('bad_option_length', name, `${name} must be ${n} bytes, got ${data.length}`);
}
function atLeast(data: Uint8Array, n: number, name: string): void {
  if (data.length < n) throw new DhcpError('bad_option_length', name, `${name} must be at least ${n} bytes, got ${data.length}`);
}
function u32(d: Uint8Array): number {
  return ((d[0]! << 24) >>> 0) + (d[1]! << 16) + (d[2]! << 8) + d[3]!;
}
function ipList(d: Uint8Array, name: string): Ipv4[] {
  atLeast(d, 4, name);
  if (d.length % 4 !== 0) throw new DhcpError('bad_option_length', name, `${name} must be a multiple of 4 bytes, got ${d.length}`);
  const out: Ipv4[] = [];
  for (let i = 0; i < d.length; i += 4) out.push(ipAt(d, i));
  return out;
}

const OPTION_DECODERS: Record<number, { name: string; decode: OptionDecoder }> = {
  [OPTION.SUBNET_MASK]: {
    name: 'subnet_mask',
    decode: (d, o, n) => {
      fixedLength(d, 4, n);
      o.subnetMask = ipAt(d, 0);
    },
  },
  [OPTION.ROUTER]: {
    name: 'router',
    decode: (d, o, n) => {
      o.routers = ipList(d, n);
    },
  },
  [OPTION.DOMAIN_NAME_SERVER]: {
    name: 'domain_name_server',
    decode: (d, o, n) => {
      o.dnsServers = ipList(d, n);
    },
  },
  [OPTION.HOST_NAME]: {
    name: 'host_name',
    decode: (d, o, n) => {
      atLeast(d, 1, n);
      o.hostName = latin1(d);
    },
  },
  [OPTION.BROADCAST_ADDRESS]: {
    name: 'broadcast_address',
    decode: (d, o, n) => {
      fixedLength(d, 4, n);
      o.broadcastAddress = ipAt(d, 0);
    },
  },
  [OPTION.REQUESTED_IP_ADDRESS]: {
    name: 'requested_ip_address',
    decode: (d, o, n) => {
      fixedLength(d, 4, n);
      o.requestedIp = ipAt(d, 0);
    },
  },
  [OPTION.IP_ADDRESS_LEASE_TIME]: {
    name: 'ip_address_lease_time',
    decode: (d, o, n) => {
      fixedLength(d, 4, n);
      o.leaseTime = u32(d);
    },
  },
  [OPTION.OPTION_OVERLOAD]: {
    name: 'option_overload',
    decode: (_d, _o, n) => {
      throw new DhcpError('option_overload_unsupported', n, 'option overload (sname/file carrying options) is not accepted');
    },
  },
  [OPTION.DHCP_MESSAGE_TYPE]: {
    name: 'dhcp_message_type',
    decode: (d, o, n) => {
      fixedLength(d, 1, n);
      if (!MESSAGE_TYPES.has(d[0]!)) throw new DhcpError('bad_option_value', n, `message type must be 1..8, got ${d[0]}`);
      o.messageType = d[0] as DhcpMessageType;
    },
  },
  [OPTION.SERVER_IDENTIFIER]: {
    name: 'server_identifier',
    decode: (d, o, n) => {
      fixedLength(d, 4, n);
      o.serverIdentifier = ipAt(d, 0);
    },
  },
  [OPTION.PARAMETER_REQUEST_LIST]: {
    name: 'parameter_request_list',
    decode: (d, o, n) => {
      atLeast(d, 1, n);
      o.parameterRequestList = Array.from(d);
    },
  },
  [OPTION.MESSAGE]: {
    name: 'message',
    decode: (d, o, n) => {
      atLeast(d, 1, n);
      o.message = latin1(d);
    },
  },
  [OPTION.MAXIMUM_DHCP_MESSAGE_SIZE]: {
    name: 'maximum_dhcp_message_size',
    decode: (d, o, n) => {
      fixedLength(d, 2, n);
      const v = (d[0]! << 8) | d[1]!;
      if (v < 576) throw new DhcpError('bad_option_value', n, `maximum message size must be at least 576, got ${v}`);
      o.maxMessageSize = v;
    },
  },
  [OPTION.RENEWAL_TIME_VALUE]: {
    name: 'renewal_time_value',
    decode: (d, o, n) => {
      fixedLength(d, 4, n);
      o.renewalTime = u32(d);
    },
  },
  [OPTION.REBINDING_TIME_VALUE]: {
    name: 'rebinding_time_value',
    decode: (d, o, n) => {
      fixedLength(d, 4, n);
      o.rebindingTime = u32(d);
    },
  },
  [OPTION.VENDOR_CLASS_IDENTIFIER]: {
    name: 'vendor_class_identifier',
    decode: (d, o, n) => {
      atLeast(d, 1, n);
      o.vendorClass = latin1(d);
    },
  },
  [OPTION.CLIENT_IDENTIFIER]: {
    name: 'client_identifier',
    decode: (d, o, n) => {
      atLeast(d, 2, n);
      o.clientIdentifier = d.slice();
    },
  },
  [OPTION.TFTP_SERVER_NAME]: {
    name: 'tftp_server_name',
    decode: (d, o, n) => {
      atLeast(d, 1, n);
      o.tftpServerName = latin1(d);
    },
  },
  [OPTION.BOOTFILE_NAME]: {
    name: 'bootfile_name',
    decode: (d, o, n) => {
      atLeast(d, 1, n);
      o.bootfileName = latin1(d);
    },
  },
  [OPTION.CLIENT_SYSTEM_ARCHITECTURE]: {
    name: 'client_system_architecture',
    decode: (d, o, n) => {
      atLeast(d, 2, n);
      if (d.length % 2 !== 0) throw new DhcpError('bad_option_length', n, `${n} must be a list of 16-bit types, got ${d.length} bytes`);
      const archs: number[] = [];
      for (let i = 0; i < d.length; i += 2) archs.push((d[i]! << 8) | d[i + 1]!);
      o.clientArchitectures = archs;
    },
  },
  [OPTION.CLIENT_MACHINE_IDENTIFIER]: {
    name: 'client_machine_identifier',
    decode: (d, o, n) => {
      // RFC 4578 §2.3: type 0 followed by a 16-byte GUID.
      fixedLength(d, 17, n);
      if (d[0] !== 0) throw new DhcpError('bad_option_value', n, `machine identifier type must be 0, got ${d[0]}`);
      o.clientMachineId = d.slice();
    },
  },
};

/**
 * Collects the options area into code → data, concatenating repeated codes as RFC 3396 requires.
 * Requires an END option; only PAD may follow it.
 */
function readOptions(b: Uint8Array): Map<number, Uint8Array> {
  // Most options appear once: their data is a view; a repeated code collects its parts, joined below.
  const out = new Map<number, Uint8Array>();
  let repeated: Map<number, Uint8Array[]> | undefined;
  let i = OPTIONS_OFFSET;
  let ended = false;
  while (i < b.length) {
    const code = b[i]!;
    if (code === OPTION.PAD) {
      i++;
      continue;
    }
    if (code === OPTION.END) {
      ended = true;
      i++;
      break;
    }
    if (i + 1 >= b.length) throw new DhcpError('truncated_option', `option_${code}`, `option ${code} has no length byte`);
    const len = b[i + 1]!;
    const start = i + 2;
    if (start + len > b.length) {
      throw new DhcpError('truncated_option', `option_${code}`, `option ${code} claims ${len} bytes, only ${b.length - start} remain`);
    }
    const data = b.subarray(start, start + len);
    const first = out.get(code);
    if (first === undefined) out.set(code, data);
    else {
      repeated ??= new Map();
      const list = repeated.get(code);
      if (list) list.push(data);
      else repeated.set(code, [first, data]);
    }
    i = start + len;
  }
  if (!ended) throw new DhcpError('missing_end', 'options', 'options area has no END option (255)');
  for (; i < b.length; i++) {
    if (b[i] !== OPTION.PAD) throw new DhcpError('trailing_bytes', 'options', `non-pad byte ${b[i]} after END at offset ${i}`);
  }
  if (repeated) {
    for (const [code, list] of repeated) {
      const total = list.reduce((n, p) => n + p.length, 0);
      const joined = new Uint8Array(total);
      let o = 0;
      for (const p of list) {
        joined.set(p, o);
        o += p.length;
      }
      out.set(code, joined);
    }
  }
  return out;
}

/** Decodes one DHCP message. Throws DhcpError (never anything else) on malformed input. */
export function decodeDhcp(bytes: Uint8Array): DhcpPacket {
  if (!(bytes instanceof Uint8Array)) throw new DhcpError('bad_input', 'packet', 'expected a Uint8Array');
  if (bytes.length < OPTIONS_OFFSET + 1) {
    throw new DhcpError('too_short', 'packet', `a DHCP message needs at least ${OPTIONS_OFFSET + 1} bytes, got ${bytes.length}`);
  }
  if (bytes.length > MAX_MESSAGE_LENGTH) {
    throw new DhcpError('too_long', 'packet', `a DHCP message may be at most ${MAX_MESSAGE_LENGTH} bytes here, got ${bytes.length}`);
  }
  const op = bytes[0]!;
  if (op !== BOOTREQUEST && op !== BOOTREPLY) throw new DhcpError('bad_field', 'op', `op must be 1 or 2, got ${op}`);
  const htype = bytes[1]!;
  const hlen = bytes[2]!;
  if (htype !== HTYPE_ETHERNET || hlen !== HLEN_ETHERNET) {
    throw new DhcpError('unsupported_hardware', 'htype', `only Ethernet (htype 1, hlen 6) is served, got htype ${htype} hlen ${hlen}`);
  }
  for (let i = 0; i < MAGIC_COOKIE.length; i++) {
    if (bytes[BOOTP_HEADER_LENGTH + i] !== MAGIC_COOKIE[i]) {
      throw new DhcpError('bad_magic_cookie', 'cookie', 'the magic cookie 99.130.83.99 is missing (plain BOOTP is not served)');
    }
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const raw = readOptions(bytes);
  const options: DhcpOptions = { messageType: 0 as DhcpMessageType, other: [] };
  for (const [code, data] of raw) {
    const dec = OPTION_DECODERS[code];
    if (dec) dec.decode(data, options, dec.name);
    else options.other.push({ code, data: data.slice() });
  }
  if (!raw.has(OPTION.DHCP_MESSAGE_TYPE)) {
    throw new DhcpError('missing_message_type', 'dhcp_message_type', 'option 53 (DHCP message type) is required');
  }
  const chaddrField = bytes.subarray(28, 28 + CHADDR_LENGTH);
  for (let i = hlen; i < CHADDR_LENGTH; i++) {
    if (chaddrField[i] !== 0) throw new DhcpError('bad_field', 'chaddr', 'chaddr has non-zero bytes beyond hlen');
  }
  return {
    op,
    htype,
    hlen,
    hops: bytes[3]!,
    xid: dv.getUint32(4),
    secs: dv.getUint16(8),
    flags: dv.getUint16(10),
    ciaddr: ipAt(bytes, 12),
    yiaddr: ipAt(bytes, 16),
    siaddr: ipAt(bytes, 20),
    giaddr: ipAt(bytes, 24),
    chaddr: chaddrField.slice(0, hlen),
    sname: cString(bytes, 44, SNAME_LENGTH, 'sname'),
    file: cString(bytes, 44 + SNAME_LENGTH, FILE_LENGTH, 'file'),
    options,
  };
}

// ---------- encoding ----------

function ipBytes(ip: Ipv4, field: string): Uint8Array {
  const out = new Uint8Array(4);
  writeIp(out, 0, ip, field);
  return out;
}

/** Writes a dotted quad (1–3 digits a part, each ≤ 255) at `at`; anything else is a DhcpError. */
function writeIp(out: Uint8Array, at: number, ip: Ipv4, field: string): void {
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i <= ip.length; i++) {
    const c = i === ip.length ? 46 : ip.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || part > 255 || dots > 3) throw new DhcpError('bad_field', field, `"${ip}" is not a dotted-quad IPv4 address`);
      out[at + dots] = part;
      dots++;
      part = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57 && digits < 3) {
      part = part * 10 + (c - 48);
      digits++;
    } else throw new DhcpError('bad_field', field, `"${ip}" is not a dotted-quad IPv4 address`);
  }
  if (dots !== 4) throw new DhcpError('bad_field', field, `"${ip}" is not a dotted-quad IPv4 address`);
}

function textBytes(s: string, field: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) throw new DhcpError('bad_field', field, `${field} has a character outside Latin-1`);
    out[i] = c;
  }
  return out;
}

function byteList(values: number[], field: string): Uint8Array {
  if (values.some((v) => !Number.isInteger(v) || v < 0 || v > 255)) throw new DhcpError('bad_field', field, `${field} entries are single bytes`);
  return Uint8Array.from(values);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Appends options to one growing buffer (no per-option arrays for the fixed-size ones). */
class OptionWriter {
  buf = new Uint8Array(576);
  pos = OPTIONS_OFFSET;

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }
  /** Any data; longer than 255 bytes: consecutive instances (RFC 3396). */
  bytes(code: number, data: Uint8Array): void {
    if (code === OPTION.PAD || code === OPTION.END) throw new DhcpError('bad_field', `option_${code}`, 'PAD and END are not data options');
    if (data.length === 0) throw new DhcpError('bad_option_length', `option_${code}`, `option ${code} has no data`);
    for (let o = 0; o < data.length; o += 255) {
      const n = Math.min(255, data.length - o);
      this.ensure(n + 2);
      this.buf[this.pos] = code;
      this.buf[this.pos + 1] = n;
      this.buf.set(data.subarray(o, o + n), this.pos + 2);
      this.pos += n + 2;
    }
  }
  ip(code: number, ip: Ipv4, field: string): void {
    this.ensure(6);
    writeIp(this.buf, this.pos + 2, ip, field);
    this.buf[this.pos] = code;
    this.buf[this.pos + 1] = 4;
    this.pos += 6;
  }
  u32(code: number, v: number, field: string): void {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new DhcpError('bad_field', field, `${field} must be a 32-bit unsigned integer`);
    this.ensure(6);
    const b = this.buf;
    const p = this.pos;
    b[p] = code;
    b[p + 1] = 4;
    b[p + 2] = v >>> 24;
    b[p + 3] = (v >>> 16) & 0xff;
    b[p + 4] = (v >>> 8) & 0xff;
    b[p + 5] = v & 0xff;
    this.pos += 6;
  }
}

function writeOptions(w: OptionWriter, o: DhcpOptions): void {
  w.bytes(OPTION.DHCP_MESSAGE_TYPE, Uint8Array.of(o.messageType));
  if (o.serverIdentifier !== undefined) w.ip(OPTION.SERVER_IDENTIFIER, o.serverIdentifier, 'server_identifier');
  if (o.leaseTime !== undefined) w.u32(OPTION.IP_ADDRESS_LEASE_TIME, o.leaseTime, 'lease_time');
  if (o.renewalTime !== undefined) w.u32(OPTION.RENEWAL_TIME_VALUE, o.renewalTime, 'renewal_time');
  if (o.rebindingTime !== undefined) w.u32(OPTION.REBINDING_TIME_VALUE, o.rebindingTime, 'rebinding_time');
  if (o.subnetMask !== undefined) w.ip(OPTION.SUBNET_MASK, o.subnetMask, 'subnet_mask');
  if (o.routers !== undefined) {
    if (o.routers.length === 1) w.ip(OPTION.ROUTER, o.routers[0]!, 'router');
    else w.bytes(OPTION.ROUTER, concat(o.routers.map((r) => ipBytes(r, 'router'))));
  }
  if (o.dnsServers !== undefined) w.bytes(OPTION.DOMAIN_NAME_SERVER, concat(o.dnsServers.map((r) => ipBytes(r, 'dns'))));
  if (o.broadcastAddress !== undefined) w.ip(OPTION.BROADCAST_ADDRESS, o.broadcastAddress, 'broadcast_address');
  if (o.hostName !== undefined) w.bytes(OPTION.HOST_NAME, textBytes(o.hostName, 'host_name'));
  if (o.requestedIp !== undefined) w.ip(OPTION.REQUESTED_IP_ADDRESS, o.requestedIp, 'requested_ip');
  if (o.parameterRequestList !== undefined) w.bytes(OPTION.PARAMETER_REQUEST_LIST, byteList(o.parameterRequestList, 'parameter_request_list'));
  if (o.message !== undefined) w.bytes(OPTION.MESSAGE, textBytes(o.message, 'message'));
  if (o.maxMessageSize !== undefined) {
    if (!Number.isInteger(o.maxMessageSize) || o.maxMessageSize < 576 || o.maxMessageSize > 0xffff) {
      throw new DhcpError('bad_field', 'maximum_dhcp_message_size', 'maximum message size must be 576..65535');
    }
    w.bytes(OPTION.MAXIMUM_DHCP_MESSAGE_SIZE, Uint8Array.of(o.maxMessageSize >> 8, o.maxMessageSize & 0xff));
  }
  if (o.vendorClass !== undefined) w.bytes(OPTION.VENDOR_CLASS_IDENTIFIER, textBytes(o.vendorClass, 'vendor_class'));
  if (o.clientIdentifier !== undefined) w.bytes(OPTION.CLIENT_IDENTIFIER, o.clientIdentifier);
  if (o.tftpServerName !== undefined) w.bytes(OPTION.TFTP_SERVER_NAME, textBytes(o.tftpServerName, 'tftp_server_name'));
  if (o.bootfileName !== undefined) w.bytes(OPTION.BOOTFILE_NAME, textBytes(o.bootfileName, 'bootfile_name'));
  if (o.clientArchitectures !== undefined) {
    const archs = o.clientArchitectures;
    if (archs.some((a) => !Number.isInteger(a) || a < 0 || a > 0xffff)) throw new DhcpError('bad_field', 'client_system_architecture', 'architecture types are 16-bit');
    w.bytes(OPTION.CLIENT_SYSTEM_ARCHITECTURE, Uint8Array.from(archs.flatMap((a) => [a >> 8, a & 0xff])));
  }
  if (o.clientMachineId !== undefined) w.bytes(OPTION.CLIENT_MACHINE_IDENTIFIER, o.clientMachineId);
  for (const x of o.other) w.bytes(x.code, x.data);
}

/** Encodes a packet; options longer than 255 bytes are split into consecutive instances (RFC 3396). */
export function encodeDhcp(p: DhcpPacket): Uint8Array {
  if (p.chaddr.length !== p.hlen || p.hlen > CHADDR_LENGTH) throw new DhcpError('bad_field', 'chaddr', 'chaddr length must equal hlen');
  const sname = textBytes(p.sname, 'sname');
  const file = textBytes(p.file, 'file');
  if (sname.length >= SNAME_LENGTH || sname.includes(0)) throw new DhcpError('bad_field', 'sname', 'sname must be < 64 bytes without NUL');
  if (file.length >= FILE_LENGTH || file.includes(0)) throw new DhcpError('bad_field', 'file', 'file must be < 128 bytes without NUL');
  // Header and options written in place into one buffer (zeroed: the padding is there already).
  const w = new OptionWriter();
  const header = w.buf;
  header[0] = p.op;
  header[1] = p.htype;
  header[2] = p.hlen;
  header[3] = p.hops;
  const xid = p.xid >>> 0;
  header[4] = xid >>> 24;
  header[5] = (xid >>> 16) & 0xff;
  header[6] = (xid >>> 8) & 0xff;
  header[7] = xid & 0xff;
  header[8] = (p.secs >>> 8) & 0xff;
  header[9] = p.secs & 0xff;
  header[10] = (p.flags >>> 8) & 0xff;
  header[11] = p.flags & 0xff;
  writeIp(header, 12, p.ciaddr, 'ciaddr');
  writeIp(header, 16, p.yiaddr, 'yiaddr');
  writeIp(header, 20, p.siaddr, 'siaddr');
  writeIp(header, 24, p.giaddr, 'giaddr');
  header.set(p.chaddr, 28);
  header.set(sname, 44);
  header.set(file, 44 + SNAME_LENGTH);
  header.set(MAGIC_COOKIE, BOOTP_HEADER_LENGTH);
  writeOptions(w, p.options);
  w.ensure(1);
  w.buf[w.pos++] = OPTION.END;
  const length = Math.max(w.pos, MIN_ENCODED_LENGTH);
  if (length > MAX_MESSAGE_LENGTH) throw new DhcpError('too_long', 'packet', `encoded message is ${length} bytes`);
  return w.buf.length === length ? w.buf : w.buf.slice(0, length);
}

/** Lower-case colon MAC from chaddr (Ethernet only). */
const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

export function chaddrToMac(chaddr: Uint8Array): string {
  let s = '';
  const n = Math.min(6, chaddr.length);
  for (let i = 0; i < n; i++) s += i === 0 ? HEX[chaddr[i]!] : `:${HEX[chaddr[i]!]}`;
  return s;
}

export function macToChaddr(mac: string): Uint8Array {
  return Uint8Array.from(mac.split(':').map((h) => Number.parseInt(h, 16)));
}
