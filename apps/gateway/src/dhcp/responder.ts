// The DHCP server's decisions (RFC 2131 §4.3), pure over a decoded request, the pool and the admission
// policy. The socket layer (server.ts) only moves bytes.
import { chaddrToMac, type DhcpOptions, type DhcpPacket, type Ipv4 } from './codec.ts';
import {
  BOOTREPLY,
  CLIENT_ARCH,
  CLIENT_PORT,
  DHCP_MESSAGE_TYPE,
  type DhcpMessageType,
  FLAG_BROADCAST,
  IPXE_USER_CLASS,
  OPTION,
  PXE_VENDOR_CLASS_PREFIX,
  SERVER_PORT,
} from './constants.ts';
import type { Lease, LeasePool } from './leases.ts';

export interface BootConfig {
  /** next-server (siaddr) and option 66 for TFTP clients. */
  tftpServer: Ipv4;
  /** Legacy BIOS (arch 0) boot file, fetched over TFTP. */
  biosBootfile: string;
  /** UEFI (arch 6/7/9) boot file: an HTTP URL of ipxe.efi, or a TFTP path. */
  uefiBootfile: string;
  /** For clients already running iPXE (option 77 "iPXE"): the URL of their per-metal script (A1). */
  ipxeScriptUrl?: string;
}

export interface ResponderConfig {
  serverIp: Ipv4;
  subnetMask: Ipv4;
  broadcastAddress: Ipv4;
  router: Ipv4;
  dnsServers: Ipv4[];
  boot?: BootConfig;
}

/** What the gateway's table should learn from an exchange. */
export type LeaseEvent =
  | { kind: 'bound'; mac: string; ip: Ipv4; hostname: string | null; pxe: boolean; renewal: boolean }
  | { kind: 'released'; mac: string; ip: Ipv4 }
  | { kind: 'declined'; mac: string; ip: Ipv4 };

export interface Response {
  reply?: DhcpPacket;
  to?: { address: Ipv4; port: number };
  event?: LeaseEvent;
  /** An ACK that bound an address its client did not already hold bound (the server's info line). */
  fresh?: boolean;
  /** Why nothing was sent (for logs and metrics). */
  dropped?: 'not_request' | 'refused' | 'pool_exhausted' | 'other_server' | 'unknown_message' | 'no_lease';
}

/** Admission says whether the gateway answers this MAC at all: Blocked interfaces are refused (T6). */
export type Admission = (mac: string) => 'serve' | 'refuse';

const ZERO = '0.0.0.0';

export function isPxeClient(req: DhcpPacket): boolean {
  return req.options.vendorClass?.startsWith(PXE_VENDOR_CLASS_PREFIX) ?? false;
}

/**
 * Option 77 says "iPXE": raw as iPXE sends it, or as one RFC 3004 user class (length, then the text).
 * A PXE ROM chain-loads iPXE, which asks again with this class: only then is the script the answer.
 */
export function isIpxeClient(req: DhcpPacket): boolean {
  const uc = req.options.other.find((o) => o.code === OPTION.USER_CLASS)?.data;
  if (!uc) return false;
  const text = Buffer.from(uc).toString('latin1');
  return text === IPXE_USER_CLASS || (uc[0] === IPXE_USER_CLASS.length && text.slice(1) === IPXE_USER_CLASS);
}

function bootOptions(req: DhcpPacket, boot: BootConfig | undefined): { siaddr: Ipv4; file: string; opts: Partial<DhcpOptions> } {
  const vendor = req.options.vendorClass ?? '';
  const httpClient = vendor.startsWith('HTTPClient');
  if (boot?.ipxeScriptUrl && isIpxeClient(req)) {
    const url = boot.ipxeScriptUrl;
    return { siaddr: boot.tftpServer, file: url.length < 128 ? url : '', opts: { tftpServerName: boot.tftpServer, bootfileName: url } };
  }
  if (!boot || (!isPxeClient(req) && !httpClient)) return { siaddr: ZERO, file: '', opts: {} };
  const arch = req.options.clientArchitectures?.[0] ?? CLIENT_ARCH.INTEL_X86PC;
  const uefi = arch === CLIENT_ARCH.EFI_IA32 || arch === CLIENT_ARCH.EFI_BC || arch === CLIENT_ARCH.EFI_X86_64 || httpClient;
  const bootfile = uefi ? boot.uefiBootfile : boot.biosBootfile;
  const opts: Partial<DhcpOptions> = { tftpServerName: boot.tftpServer, bootfileName: bootfile };
  // UEFI HTTP boot clients only accept an offer that echoes their class (UEFI 2.x §24.7).
  if (httpClient) opts.vendorClass = 'HTTPClient';
  return { siaddr: boot.tftpServer, file: bootfile.length < 128 ? bootfile : '', opts };
}

function baseReply(req: DhcpPacket, type: DhcpMessageType, cfg: ResponderConfig): DhcpPacket {
  return {
    op: BOOTREPLY,
    htype: req.htype,
    hlen: req.hlen,
    hops: 0,
    xid: req.xid,
    secs: 0,
    flags: req.flags,
    ciaddr: ZERO,
    yiaddr: ZERO,
    siaddr: ZERO,
    giaddr: req.giaddr,
    chaddr: req.chaddr,
    sname: '',
    file: '',
    options: { messageType: type, serverIdentifier: cfg.serverIp, other: [] },
  };
}

function leaseReply(req: DhcpPacket, type: DhcpMessageType, lease: Lease, cfg: ResponderConfig, leaseTimeSec: number, now: number): DhcpPacket {
  const r = baseReply(req, type, cfg);
  const remaining = Math.max(1, Math.min(leaseTimeSec, Math.floor((lease.expiresAt - now) / 1000)));
  const time = type === DHCP_MESSAGE_TYPE.DHCPOFFER ? leaseTimeSec : remaining;
  const boot = bootOptions(req, cfg.boot);
  r.yiaddr = lease.ip;
  r.siaddr = boot.siaddr;
  r.file = boot.file;
  // Built field by field (object spreads take V8's slow path; this runs for every OFFER and ACK).
  const opts = r.options;
  opts.leaseTime = time;
  opts.renewalTime = Math.floor(time / 2);
  opts.rebindingTime = Math.floor((time * 7) / 8);
  opts.subnetMask = cfg.subnetMask;
  opts.routers = [cfg.router];
  opts.broadcastAddress = cfg.broadcastAddress;
  if (cfg.dnsServers.length > 0) opts.dnsServers = cfg.dnsServers;
  const b = boot.opts;
  if (b.tftpServerName !== undefined) opts.tftpServerName = b.tftpServerName;
  if (b.bootfileName !== undefined) opts.bootfileName = b.bootfileName;
  if (b.vendorClass !== undefined) opts.vendorClass = b.vendorClass;
  return r;
}

/** RFC 2131 §4.1 reply addressing, without the unicast-to-unconfigured-client case (no ARP injection from node). */
function destination(req: DhcpPacket, reply: DhcpPacket, cfg: ResponderConfig): { address: Ipv4; port: number } {
  if (req.giaddr !== ZERO) return { address: req.giaddr, port: SERVER_PORT };
  if (reply.options.messageType === DHCP_MESSAGE_TYPE.DHCPNAK) return { address: '255.255.255.255', port: CLIENT_PORT };
  if (req.ciaddr !== ZERO) return { address: req.ciaddr, port: CLIENT_PORT };
  if ((req.flags & FLAG_BROADCAST) !== 0) return { address: '255.255.255.255', port: CLIENT_PORT };
  // The client has no address yet and cannot be unicast without a static ARP entry: use the
  // subnet's broadcast, which the kernel routes out of the LAN interface (RFC 2131 §4.1 allows broadcast).
  return { address: cfg.broadcastAddress, port: CLIENT_PORT };
}

function nak(req: DhcpPacket, cfg: ResponderConfig, why: string): Response {
  const r = baseReply(req, DHCP_MESSAGE_TYPE.DHCPNAK, cfg);
  r.flags = req.flags | FLAG_BROADCAST;
  r.options.message = why;
  return { reply: r, to: destination(req, r, cfg) };
}

export function respond(req: DhcpPacket, pool: LeasePool, cfg: ResponderConfig, admission: Admission, now: number): Response {
  if (req.op !== 1) return { dropped: 'not_request' };
  const mac = chaddrToMac(req.chaddr);
  const o = req.options;
  const hostname = o.hostName ?? null;
  const type = o.messageType;
  if (type === DHCP_MESSAGE_TYPE.DHCPRELEASE) {
    if (o.serverIdentifier && o.serverIdentifier !== cfg.serverIp) return { dropped: 'other_server' };
    return pool.release(mac, req.ciaddr) ? { event: { kind: 'released', mac, ip: req.ciaddr } } : { dropped: 'no_lease' };
  }
  if (type === DHCP_MESSAGE_TYPE.DHCPDECLINE) {
    if (!o.requestedIp || (o.serverIdentifier && o.serverIdentifier !== cfg.serverIp)) return { dropped: 'other_server' };
    return pool.decline(mac, o.requestedIp) ? { event: { kind: 'declined', mac, ip: o.requestedIp } } : { dropped: 'no_lease' };
  }
  if (admission(mac) === 'refuse') return { dropped: 'refused' };

  if (type === DHCP_MESSAGE_TYPE.DHCPDISCOVER) {
    const lease = pool.offer(mac, o.requestedIp, hostname);
    if (!lease) return { dropped: 'pool_exhausted' };
    const reply = leaseReply(req, DHCP_MESSAGE_TYPE.DHCPOFFER, lease, cfg, pool.leaseTimeSec, now);
    return { reply, to: destination(req, reply, cfg) };
  }

  if (type === DHCP_MESSAGE_TYPE.DHCPREQUEST) {
    const selecting = o.serverIdentifier !== undefined;
    if (selecting && o.serverIdentifier !== cfg.serverIp) return { dropped: 'other_server' };
    const renewing = !selecting && o.requestedIp === undefined && req.ciaddr !== ZERO;
    const ip = renewing ? req.ciaddr : o.requestedIp;
    if (!ip) return nak(req, cfg, 'no requested address');
    if (!pool.inPool(ip)) return nak(req, cfg, 'address not on this network');
    const fresh = pool.holderOf(ip) !== mac;
    const lease = pool.bind(mac, ip, hostname);
    if (!lease) return nak(req, cfg, 'address not leased to this client');
    const reply = leaseReply(req, DHCP_MESSAGE_TYPE.DHCPACK, lease, cfg, pool.leaseTimeSec, now);
    return {
      reply,
      to: destination(req, reply, cfg),
      fresh,
      event: { kind: 'bound', mac, ip, hostname, pxe: isPxeClient(req) || isIpxeClient(req), renewal: renewing },
    };
  }

  if (type === DHCP_MESSAGE_TYPE.DHCPINFORM) {
    // RFC 2131 §4.3.5: configuration only, no lease, no yiaddr, no lease time.
    const r = baseReply(req, DHCP_MESSAGE_TYPE.DHCPACK, cfg);
    r.options = {
      ...r.options,
      subnetMask: cfg.subnetMask,
      routers: [cfg.router],
      ...(cfg.dnsServers.length > 0 ? { dnsServers: cfg.dnsServers } : {}),
    };
    return { reply: r, to: destination(req, r, cfg) };
  }
  return { dropped: 'unknown_message' };
}
