import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { interfacesOf, writeSetup } from './device.ts';

const dir = mkdtempSync(join(tmpdir(), 'tips-client-onboard-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function sysIface(name: string, mac: string, type = '1', wireless = false) {
  mkdirSync(join(dir, 'sys', name), { recursive: true });
  writeFileSync(join(dir, 'sys', name, 'address'), `${mac}\n`);
  writeFileSync(join(dir, 'sys', name, 'type'), `${type}\n`);
  if (wireless) mkdirSync(join(dir, 'sys', name, 'wireless'));
}

describe('Z1 tips-client onboard: what the device reports and what it writes', () => {
  sysIface('lo', '00:00:00:00:00:00', '772');
  sysIface('eth0', '02:aa:00:00:00:01');
  sysIface('wlan0', '02:aa:00:00:00:02', '1', true);
  sysIface('tun0', '00:00:00:00:00:00', '65534');

  it('reports the MACs the kernel knows; the first named interface is the boot one; nothing without a MAC', () => {
    expect(interfacesOf([], join(dir, 'sys'))).toEqual([
      { name: 'eth0', mac: '02:aa:00:00:00:01', type: 'ethernet', pxe: true },
      { name: 'wlan0', mac: '02:aa:00:00:00:02', type: 'wifi', pxe: false },
    ]);
    expect(interfacesOf(['wlan0'], join(dir, 'sys'))).toEqual([{ name: 'wlan0', mac: '02:aa:00:00:00:02', type: 'wifi', pxe: true }]);
    expect(() => interfacesOf(['tun0'], join(dir, 'sys'))).toThrow(/knows no Ethernet MAC/);
    expect(() => interfacesOf(['nope'], join(dir, 'sys'))).toThrow(/knows no Ethernet MAC/);
  });

  it('writes the sealed setup as contract B files: the secret 0600, config.json naming them', () => {
    const config = join(dir, 'etc', 'config.json');
    writeSetup(
      {
        tipsId: 'mtl_0000000000000000000000000a',
        metalId: 'mtl_0000000000000000000000000a',
        masterUrl: 'https://m:8443',
        estUrl: 'https://m:8443/.well-known/est',
        caPem: '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n',
        enrollment: { secretId: 'ens_x', secret: 'est_y' },
        profile: 'p',
        phase1Glaze: null,
        protocols: ['http'],
        agent: { managedPaths: ['/etc/app'] },
      },
      config,
      join(dir, 'state'),
    );
    expect(statSync(join(dir, 'etc', 'enrollment.json')).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(join(dir, 'etc', 'enrollment.json'), 'utf8'))).toEqual({ secretId: 'ens_x', secret: 'est_y' });
    const c = JSON.parse(readFileSync(config, 'utf8'));
    expect(c).toMatchObject({ masterUrl: 'https://m:8443', caFile: join(dir, 'etc', 'ca.pem'), enrollmentFile: join(dir, 'etc', 'enrollment.json'), managedPaths: ['/etc/app'], stateDir: join(dir, 'state') });
    expect(readFileSync(join(dir, 'etc', 'ca.pem'), 'utf8')).toContain('BEGIN CERTIFICATE');
  });
});
