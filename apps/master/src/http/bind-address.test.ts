import type { NetworkInterfaceInfo } from 'node:os';
import { describe, expect, it } from 'vitest';
import { describeListen } from './bind-address.ts';

const nic = (address: string, family: 'IPv4' | 'IPv6', internal = false) => ({ address, family, internal }) as NetworkInterfaceInfo;
const interfaces = { lo: [nic('127.0.0.1', 'IPv4', true), nic('::1', 'IPv6', true)], eth0: [nic('fe80::1', 'IPv6'), nic('2001:db8::5', 'IPv6'), nic('192.0.2.10', 'IPv4')] };

describe('D4 the master prints the address it is bound to', () => {
  it('prints a specific address as it is', () => {
    const l = describeListen('127.0.0.1', 8080, 'http', 'http://127.0.0.1:8080', interfaces);
    expect(l).toEqual({ bound: 'http://127.0.0.1:8080', usable: 'http://127.0.0.1:8080', line: 'listening on http://127.0.0.1:8080' });
  });
  it('prints 0.0.0.0 as 0.0.0.0, says it is every IPv4 address, and offers the host’s IPv4 addresses first', () => {
    const l = describeListen('0.0.0.0', 8080, 'http', 'http://127.0.0.1:8080', interfaces);
    expect(l.bound).toBe('http://0.0.0.0:8080');
    expect(l.usable).toBe('http://192.0.2.10:8080');
    expect(l.line).toBe('listening on http://0.0.0.0:8080 (every IPv4 address of this host; reach it at http://192.0.2.10:8080 or http://127.0.0.1:8080)');
  });
  it('prints :: with IPv6 addresses too, never a link-local one', () => {
    const l = describeListen('::', 8443, 'https', 'https://[::1]:8443', interfaces);
    expect(l.bound).toBe('https://[::]:8443');
    expect(l.line).toContain('every IPv6 and IPv4 address');
    expect(l.line).toContain('https://[2001:db8::5]:8443');
    expect(l.line).not.toContain('fe80');
  });
});
