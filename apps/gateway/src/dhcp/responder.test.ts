import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openGatewayDb } from '../store/db.ts';
import { type DhcpPacket, decodeDhcp, encodeDhcp, macToChaddr } from './codec.ts';
import { DHCP_MESSAGE_TYPE, FLAG_BROADCAST } from './constants.ts';
import { LeasePool, parsePoolRange, SqliteLeaseStore } from './leases.ts';
import { type Admission, type ResponderConfig, respond } from './responder.ts';

const CFG: ResponderConfig = {
  serverIp: '10.77.0.1',
  subnetMask: '255.255.255.0',
  broadcastAddress: '10.77.0.255',
  router: '10.77.0.1',
  dnsServers: ['10.77.0.1'],
  boot: {
    tftpServer: '10.77.0.1',
    biosBootfile: 'undionly.kpxe',
    uefiBootfile: 'http://10.77.0.1:8080/ipxe.efi',
    ipxeScriptUrl: 'http://10.77.0.1:8080/boot/script.ipxe',
  },
};
const MAC_A = '02:00:00:00:00:0a';
const MAC_B = '02:00:00:00:00:0b';
const serve: Admission = () => 'serve';

function request(mac: string, type: number, extra: Partial<DhcpPacket['options']> = {}, ciaddr = '0.0.0.0'): DhcpPacket {
  // Every request goes through the real codec, as on the wire.
  return decodeDhcp(
    encodeDhcp({
      op: 1,
      htype: 1,
      hlen: 6,
      hops: 0,
      xid: 0x1234,
      secs: 0,
      flags: 0,
      ciaddr,
      yiaddr: '0.0.0.0',
      siaddr: '0.0.0.0',
      giaddr: '0.0.0.0',
      chaddr: macToChaddr(mac),
      sname: '',
      file: '',
      options: { messageType: type as DhcpPacket['options']['messageType'], other: [], ...extra },
    }),
  );
}

describe('T5 DHCP lease pool and server decisions (RFC 2131 §4.3)', () => {
  let dir: string;
  let now: number;
  let pool: LeasePool;
  let reopen: () => LeasePool;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tgw-leases-'));
    now = 1_700_000_000_000;
    reopen = () =>
      new LeasePool({ ...parsePoolRange('10.77.0.100-10.77.0.102'), leaseTimeSec: 600 }, new SqliteLeaseStore(openGatewayDb(dir)), () => now);
    pool = reopen();
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const exchange = (mac: string) => {
    const offer = respond(request(mac, DHCP_MESSAGE_TYPE.DHCPDISCOVER), pool, CFG, serve, now);
    const ip = offer.reply!.yiaddr;
    const ack = respond(
      request(mac, DHCP_MESSAGE_TYPE.DHCPREQUEST, { serverIdentifier: CFG.serverIp, requestedIp: ip }),
      pool,
      CFG,
      serve,
      now,
    );
    return { offer, ack, ip };
  };

  it('DISCOVER → OFFER, REQUEST → ACK with router = gateway, DNS, lease time, T1/T2; addressed by broadcast', () => {
    const { offer, ack, ip } = exchange(MAC_A);
    expect(offer.reply!.options.messageType).toBe(DHCP_MESSAGE_TYPE.DHCPOFFER);
    expect(ip).toBe('10.77.0.100');
    expect(offer.to).toEqual({ address: '10.77.0.255', port: 68 });
    const a = ack.reply!;
    expect(a.options.messageType).toBe(DHCP_MESSAGE_TYPE.DHCPACK);
    expect(a.yiaddr).toBe(ip);
    expect(a.options.routers).toEqual(['10.77.0.1']);
    expect(a.options.dnsServers).toEqual(['10.77.0.1']);
    expect(a.options.leaseTime).toBe(600);
    expect(a.options.renewalTime).toBe(300);
    expect(a.options.rebindingTime).toBe(525);
    expect(a.options.serverIdentifier).toBe('10.77.0.1');
    expect(ack.event).toEqual({ kind: 'bound', mac: MAC_A, ip, hostname: null, pxe: false, renewal: false });
  });

  it('offers the same address back to a known MAC, also after a restart (persisted)', () => {
    exchange(MAC_A);
    const b = exchange(MAC_B);
    expect(b.ip).toBe('10.77.0.101');
    pool = reopen();
    expect(respond(request(MAC_A, DHCP_MESSAGE_TYPE.DHCPDISCOVER), pool, CFG, serve, now).reply!.yiaddr).toBe('10.77.0.100');
    expect(pool.bound().map((l) => l.mac)).toEqual([MAC_A, MAC_B]);
  });

  it('honours a requested address when it is free, and the broadcast flag', () => {
    const r = request(MAC_A, DHCP_MESSAGE_TYPE.DHCPDISCOVER, { requestedIp: '10.77.0.102' });
    r.flags = FLAG_BROADCAST;
    const offer = respond(r, pool, CFG, serve, now);
    expect(offer.reply!.yiaddr).toBe('10.77.0.102');
    expect(offer.to!.address).toBe('255.255.255.255');
  });

  it('NAKs a REQUEST for another subnet or for an address leased to someone else', () => {
    const { ip } = exchange(MAC_A);
    const wrongNet = respond(request(MAC_B, DHCP_MESSAGE_TYPE.DHCPREQUEST, { requestedIp: '192.168.1.5' }), pool, CFG, serve, now);
    expect(wrongNet.reply!.options.messageType).toBe(DHCP_MESSAGE_TYPE.DHCPNAK);
    expect(wrongNet.to!.address).toBe('255.255.255.255');
    const stolen = respond(request(MAC_B, DHCP_MESSAGE_TYPE.DHCPREQUEST, { requestedIp: ip }), pool, CFG, serve, now);
    expect(stolen.reply!.options.messageType).toBe(DHCP_MESSAGE_TYPE.DHCPNAK);
    expect(stolen.event).toBeUndefined();
  });

  it('ignores a REQUEST that selects another server', () => {
    respond(request(MAC_A, DHCP_MESSAGE_TYPE.DHCPDISCOVER), pool, CFG, serve, now);
    const r = respond(
      request(MAC_A, DHCP_MESSAGE_TYPE.DHCPREQUEST, { serverIdentifier: '10.77.0.9', requestedIp: '10.77.0.100' }),
      pool,
      CFG,
      serve,
      now,
    );
    expect(r).toEqual({ dropped: 'other_server' });
  });

  it('RENEWING (ciaddr, no option 50) is ACKed by unicast and extends the lease', () => {
    const { ip } = exchange(MAC_A);
    now += 300_000;
    const renew = respond(request(MAC_A, DHCP_MESSAGE_TYPE.DHCPREQUEST, {}, ip), pool, CFG, serve, now);
    expect(renew.reply!.options.messageType).toBe(DHCP_MESSAGE_TYPE.DHCPACK);
    expect(renew.to).toEqual({ address: ip, port: 68 });
    expect(renew.event).toMatchObject({ kind: 'bound', renewal: true });
    expect(pool.leaseOf(MAC_A)!.expiresAt).toBe(now + 600_000);
  });

  it('DECLINE takes the address out of the pool; RELEASE frees it for others once expired', () => {
    const { ip } = exchange(MAC_A);
    expect(respond(request(MAC_A, DHCP_MESSAGE_TYPE.DHCPDECLINE, { requestedIp: ip, serverIdentifier: CFG.serverIp }), pool, CFG, serve, now).event).toEqual({
      kind: 'declined',
      mac: MAC_A,
      ip,
    });
    expect(exchange(MAC_A).ip).toBe('10.77.0.101');
    const b = exchange(MAC_B);
    expect(b.ip).toBe('10.77.0.102');
    expect(respond(request(MAC_B, DHCP_MESSAGE_TYPE.DHCPRELEASE, {}, b.ip), pool, CFG, serve, now).event).toMatchObject({ kind: 'released' });
    // Pool: .100 declined, .101 MAC_A, .102 released by MAC_B → a third MAC gets .102.
    expect(exchange('02:00:00:00:00:0c').ip).toBe('10.77.0.102');
    // And when everything is taken, nothing is offered.
    expect(respond(request('02:00:00:00:00:0d', DHCP_MESSAGE_TYPE.DHCPDISCOVER), pool, CFG, serve, now)).toEqual({ dropped: 'pool_exhausted' });
  });

  it('expired leases are reused, oldest first', () => {
    exchange(MAC_A);
    exchange(MAC_B);
    exchange('02:00:00:00:00:0c');
    now += 700_000;
    expect(exchange('02:00:00:00:00:0d').ip).toBe('10.77.0.100');
  });

  it('INFORM → ACK without a lease', () => {
    const r = respond(request(MAC_A, DHCP_MESSAGE_TYPE.DHCPINFORM, {}, '10.77.0.50'), pool, CFG, serve, now);
    expect(r.reply!.options.messageType).toBe(DHCP_MESSAGE_TYPE.DHCPACK);
    expect(r.reply!.yiaddr).toBe('0.0.0.0');
    expect(r.reply!.options.leaseTime).toBeUndefined();
    expect(r.to).toEqual({ address: '10.77.0.50', port: 68 });
    expect(pool.leaseOf(MAC_A)).toBeUndefined();
  });

  it('T6 a refused (Blocked) MAC gets no answer at all', () => {
    expect(respond(request(MAC_A, DHCP_MESSAGE_TYPE.DHCPDISCOVER), pool, CFG, () => 'refuse', now)).toEqual({ dropped: 'refused' });
    expect(pool.leaseOf(MAC_A)).toBeUndefined();
  });

  it('PXE clients get next-server, option 66 and 67 by architecture (RFC 4578)', () => {
    const bios = respond(
      request(MAC_A, DHCP_MESSAGE_TYPE.DHCPDISCOVER, { vendorClass: 'PXEClient:Arch:00000:UNDI:002001', clientArchitectures: [0] }),
      pool,
      CFG,
      serve,
      now,
    ).reply!;
    expect(bios.siaddr).toBe('10.77.0.1');
    expect(bios.options.tftpServerName).toBe('10.77.0.1');
    expect(bios.options.bootfileName).toBe('undionly.kpxe');
    expect(bios.file).toBe('undionly.kpxe');
    const uefi = respond(
      request(MAC_B, DHCP_MESSAGE_TYPE.DHCPDISCOVER, { vendorClass: 'PXEClient:Arch:00007:UNDI:003016', clientArchitectures: [7] }),
      pool,
      CFG,
      serve,
      now,
    ).reply!;
    expect(uefi.options.bootfileName).toBe('http://10.77.0.1:8080/ipxe.efi');
    const plain = exchange('02:00:00:00:00:0c').offer.reply!;
    expect(plain.options.bootfileName).toBeUndefined();
    expect(plain.siaddr).toBe('0.0.0.0');
  });

  it('T13 A1 iPXE (option 77 "iPXE", raw or RFC 3004) gets its script URL as boot file; the PXE ROM before it gets the first stage', () => {
    const ipxe = { code: 77, data: Buffer.from('iPXE') };
    const rom = respond(
      request(MAC_A, DHCP_MESSAGE_TYPE.DHCPDISCOVER, { vendorClass: 'PXEClient:Arch:00000:UNDI:002001', clientArchitectures: [0] }),
      pool,
      CFG,
      serve,
      now,
    ).reply!;
    expect(rom.options.bootfileName).toBe('undionly.kpxe');
    const chained = respond(
      request(MAC_A, DHCP_MESSAGE_TYPE.DHCPDISCOVER, { vendorClass: 'PXEClient:Arch:00000:UNDI:002001', clientArchitectures: [0], other: [ipxe] }),
      pool,
      CFG,
      serve,
      now,
    ).reply!;
    expect(chained.options.bootfileName).toBe('http://10.77.0.1:8080/boot/script.ipxe');
    expect(chained.file).toBe('http://10.77.0.1:8080/boot/script.ipxe');
    expect(chained.siaddr).toBe('10.77.0.1');
    // udhcpc `-x 0x4d:...` without a vendor class, and the RFC 3004 form (length prefix).
    const rfc3004 = { code: 77, data: Buffer.from('\x04iPXE', 'latin1') };
    for (const other of [[ipxe], [rfc3004]]) {
      const offer = respond(request(MAC_B, DHCP_MESSAGE_TYPE.DHCPDISCOVER, { other }), pool, CFG, serve, now).reply!;
      expect(offer.options.bootfileName).toBe('http://10.77.0.1:8080/boot/script.ipxe');
    }
    // The ACK carries it too, and the table learns the interface boots from the network.
    const ip = respond(request(MAC_B, DHCP_MESSAGE_TYPE.DHCPDISCOVER, { other: [ipxe] }), pool, CFG, serve, now).reply!.yiaddr;
    const ack = respond(request(MAC_B, DHCP_MESSAGE_TYPE.DHCPREQUEST, { serverIdentifier: CFG.serverIp, requestedIp: ip, other: [ipxe] }), pool, CFG, serve, now);
    expect(ack.reply!.options.bootfileName).toBe('http://10.77.0.1:8080/boot/script.ipxe');
    expect(ack.event).toMatchObject({ kind: 'bound', pxe: true });
    // Another user class, or "iPXE" as a prefix of something else, is not iPXE.
    for (const data of [Buffer.from('iPXE2'), Buffer.from('gPXE'), Buffer.from('\x05iPXE2', 'latin1')]) {
      const r = respond(request('02:00:00:00:00:0c', DHCP_MESSAGE_TYPE.DHCPDISCOVER, { other: [{ code: 77, data }] }), pool, CFG, serve, now).reply!;
      expect(r.options.bootfileName).toBeUndefined();
    }
    // A Blocked MAC gets nothing, iPXE or not.
    expect(respond(request('02:00:00:00:00:0d', DHCP_MESSAGE_TYPE.DHCPDISCOVER, { other: [ipxe] }), pool, CFG, () => 'refuse', now)).toEqual({ dropped: 'refused' });
  });
});
