import { describe, expect, it } from 'vitest';
import type { InterfaceRow } from '../table/table.ts';
import { EnforcerError } from './enforcer.ts';
import { renderRuleset } from './nft.ts';

const CFG = { table: 'tips_gw', lan: ['br0'], uplink: 'up0', bootUdpPorts: [69], bootTcpPorts: [8080] };
const row = (mac: string, state: InterfaceRow['state'], ip: string | null): InterfaceRow => ({
  mac,
  gatewayInterface: 'br0',
  tipsId: null,
  state,
  type: 'ethernet',
  ip,
  pxe: false,
  hostname: null,
  since: 0,
  reason: null,
  attempts: 0,
  updatedAt: 0,
  nat: [],
});

describe('T7 T8 T11 nftables rendering of the interface table', () => {
  const text = renderRuleset(CFG, [
    row('02:00:00:00:00:01', 'active', '10.77.0.100'),
    row('02:00:00:00:00:02', 'pending', '10.77.0.101'),
    row('02:00:00:00:00:03', 'blocked', '10.77.0.102'),
  ]);

  it('replaces the whole table in one transaction (add, delete, define)', () => {
    expect(text.split('\n').slice(0, 3)).toEqual(['table inet tips_gw', 'delete table inet tips_gw', 'table inet tips_gw {']);
  });

  it('puts each row in the set of its state, Active matched by interface . MAC . address', () => {
    expect(text).toContain('elements = { "br0" . 02:00:00:00:00:01 . 10.77.0.100 }');
    expect(text).toMatch(/set active_ip \{\n\t\ttype ipv4_addr\n\t\telements = \{ 10\.77\.0\.100 \}/);
    expect(text).toMatch(/set pending \{\n\t\ttype ifname \. ether_addr\n\t\telements = \{ "br0" \. 02:00:00:00:00:02 \}/);
    expect(text).toMatch(/set blocked \{\n\t\ttype ifname \. ether_addr\n\t\telements = \{ "br0" \. 02:00:00:00:00:03 \}/);
  });

  it('forwards and masquerades Active only; Blocked is dropped before DHCP; everything else on the LAN drops', () => {
    const input = text.slice(text.indexOf('chain input'), text.indexOf('chain forward'));
    expect(input.indexOf('@blocked drop')).toBeLessThan(input.indexOf('udp sport 68 udp dport 67 accept'));
    expect(input).toContain('iifname . ether saddr @pending udp dport 69 accept');
    expect(input).toContain('iifname . ether saddr @pending tcp dport 8080 accept');
    expect(input.trim().split('\n').at(-2)!.trim()).toBe('drop');
    expect(text).toContain('iifname { "br0" } oifname "up0" iifname . ether saddr . ip saddr @active accept');
    expect(text).toContain('iifname { "br0" } drop');
    expect(text).toContain('oifname "up0" ip saddr @active_ip masquerade');
  });

  it('an Active row without an address grants nothing; empty sets render without elements', () => {
    const t = renderRuleset(CFG, [row('02:00:00:00:00:01', 'active', null)]);
    expect(t).not.toContain('02:00:00:00:00:01');
    expect(t).toContain('set active {\n\t\ttype ifname . ether_addr . ipv4_addr\n\t}');
  });

  it('refuses names and addresses that could inject rules', () => {
    expect(() => renderRuleset({ ...CFG, uplink: 'up0"; flush ruleset' }, [])).toThrow(EnforcerError);
    expect(() => renderRuleset(CFG, [row('02:00:00:00:00:01 } ', 'pending', null)])).toThrow(EnforcerError);
    expect(() => renderRuleset(CFG, [row('02:00:00:00:00:01', 'active', '10.0.0.1 }')])).toThrow(EnforcerError);
    expect(() => renderRuleset({ ...CFG, lan: [] }, [])).toThrow(EnforcerError);
  });
});
