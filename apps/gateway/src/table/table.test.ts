import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openGatewayDb } from '../store/db.ts';
import { natByAddress, parseConntrack } from './conntrack.ts';
import { InterfaceTable } from './table.ts';

// `conntrack -L -o extended` (conntrack-tools 1.4.7) on a gateway masquerading 10.77.0.100 behind 10.99.0.2.
const CONNTRACK = [
  'ipv4     2 tcp      6 119 TIME_WAIT src=10.77.0.100 dst=10.99.0.100 sport=41234 dport=8081 src=10.99.0.100 dst=10.99.0.2 sport=8081 dport=41234 [ASSURED] mark=0 use=1',
  'ipv4     2 icmp     1 29 src=10.77.0.100 dst=10.99.0.100 type=8 code=0 id=7 src=10.99.0.100 dst=10.99.0.2 type=0 code=0 id=7 mark=0 use=1',
  'ipv4     2 udp      17 25 src=10.77.0.100 dst=10.77.0.1 sport=68 dport=67 [UNREPLIED] src=10.77.0.1 dst=10.77.0.100 sport=67 dport=68 mark=0 use=1',
  'ipv6     10 udp      17 25 src=fe80::1 dst=ff02::1 sport=5353 dport=5353 [UNREPLIED] src=ff02::1 dst=fe80::1 sport=5353 dport=5353 mark=0 use=1',
  '',
].join('\n');

describe('T11 NAT columns come from conntrack (paper Fig. 4)', () => {
  it('parses original and reply tuples into local port, destination, translated address, outgoing port', () => {
    const flows = parseConntrack(CONNTRACK);
    expect(flows).toHaveLength(3);
    expect(flows[0]).toEqual({
      source: '10.77.0.100',
      protocol: 'tcp',
      localPort: 41234,
      destination: '10.99.0.100',
      destinationPort: 8081,
      translatedAddress: '10.99.0.2',
      outgoingPort: 41234,
    });
    expect(flows[1]).toMatchObject({ protocol: 'icmp', localPort: null, translatedAddress: '10.99.0.2' });
  });
  it('keeps only translated flows, per metal address', () => {
    const nat = natByAddress(parseConntrack(CONNTRACK));
    expect([...nat.keys()]).toEqual(['10.77.0.100']);
    expect(nat.get('10.77.0.100')!.map((n) => n.protocol)).toEqual(['tcp', 'icmp']);
  });
});

describe('T5 T6 T8 T10 interface table rows per (MAC, gateway interface), persisted', () => {
  let dir: string;
  let now = 1000;
  let table: InterfaceTable;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tgw-table-'));
    table = new InterfaceTable(openGatewayDb(dir), () => now);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const lease = (mac: string, ip: string) => table.observeLease({ mac, gatewayInterface: 'br0', ip, type: 'ethernet', pxe: true, hostname: 'm1' });

  it('issue 13: the admission state read from memory follows every decision, block and clear; a renewal returns the row as stored', () => {
    const mac = '02:00:00:00:00:09';
    expect(table.stateOf(mac, 'br0')).toBeUndefined();
    lease(mac, '10.77.0.109');
    expect(table.stateOf(mac, 'br0')).toBe('pending');
    table.decide(mac, 'br0', { state: 'active', tipsId: 'mtl_s', reason: null });
    expect(table.stateOf(mac, 'br0')).toBe('active');
    table.block('mtl_s', [], 'metal_blocked');
    expect(table.stateOf(mac, 'br0')).toBe('blocked');
    // A renewal keeps the state; the row it returns is the row the database holds.
    now = 5000;
    const renewed = table.observeLease({ mac, gatewayInterface: 'br0', ip: '10.77.0.110', type: 'ethernet', pxe: false, hostname: null });
    expect(renewed.row).toEqual(table.get(mac, 'br0'));
    expect(renewed).toMatchObject({ created: false, ipChanged: true, row: { state: 'blocked', ip: '10.77.0.110', hostname: 'm1', updatedAt: 5000 } });
    table.clear(mac);
    expect(table.stateOf(mac, 'br0')).toBeUndefined();
    // Another table on the same file sees what this one wrote.
    lease(mac, '10.77.0.109');
    table.decide(mac, 'br0', { state: 'blocked', tipsId: null, reason: 'unknown_mac' });
    expect(new InterfaceTable(openGatewayDb(dir)).stateOf(mac, 'br0')).toBe('blocked');
  });

  it('a new lease makes a Pending row; a decision makes it Active with its TIPS ID', () => {
    const { row, created } = lease('02:00:00:00:00:01', '10.77.0.100');
    expect(created).toBe(true);
    expect(row).toMatchObject({ state: 'pending', tipsId: null, ip: '10.77.0.100', pxe: true, reason: 'awaiting_decision' });
    now = 2000;
    const d = table.decide('02:00:00:00:00:01', 'br0', { state: 'active', tipsId: 'mtl_x', reason: null })!;
    expect(d.before.state).toBe('pending');
    expect(d.after).toMatchObject({ state: 'active', tipsId: 'mtl_x', since: 2000 });
    expect(lease('02:00:00:00:00:01', '10.77.0.100')).toMatchObject({ created: false, ipChanged: false, row: { state: 'active' } });
  });

  it('two interfaces of one metal hold different states; block by TIPS ID hits every row of that metal', () => {
    lease('02:00:00:00:00:01', '10.77.0.100');
    lease('02:00:00:00:00:02', '10.77.0.101');
    table.decide('02:00:00:00:00:01', 'br0', { state: 'active', tipsId: 'mtl_x', reason: null });
    table.decide('02:00:00:00:00:02', 'br0', { state: 'blocked', tipsId: null, reason: 'unknown_mac' });
    expect(table.counts()).toEqual({ pending: 0, active: 1, blocked: 1 });
    const changed = table.block('mtl_x', [], 'metal_blocked');
    expect(changed.map((c) => c.after.mac)).toEqual(['02:00:00:00:00:01']);
    expect(table.get('02:00:00:00:00:01', 'br0')).toMatchObject({ state: 'blocked', reason: 'metal_blocked' });
  });

  it('clear forgets the rows of a MAC; NAT samples are stored and survive reopening', () => {
    lease('02:00:00:00:00:01', '10.77.0.100');
    table.decide('02:00:00:00:00:01', 'br0', { state: 'active', tipsId: 'mtl_x', reason: null });
    const entry = natByAddress(parseConntrack(CONNTRACK)).get('10.77.0.100')![0]!;
    table.replaceNat([{ mac: '02:00:00:00:00:01', gatewayInterface: 'br0', entry }]);
    const reopened = new InterfaceTable(openGatewayDb(dir));
    expect(reopened.get('02:00:00:00:00:01', 'br0')!.nat).toEqual([entry]);
    expect(table.clear('02:00:00:00:00:01')).toHaveLength(1);
    expect(reopened.all()).toEqual([]);
  });

  it('recordAttempt counts attempts of Pending rows only', () => {
    lease('02:00:00:00:00:01', '10.77.0.100');
    table.recordAttempt('02:00:00:00:00:01', 'br0', 'master_unreachable');
    table.recordAttempt('02:00:00:00:00:01', 'br0', 'master_unreachable');
    expect(table.get('02:00:00:00:00:01', 'br0')).toMatchObject({ attempts: 2, reason: 'master_unreachable', state: 'pending' });
  });
});
