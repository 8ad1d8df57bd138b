import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createVoucher, decodeDeviceCredential, rendezvousFromUrls } from '@tips/onboarding';
import { defaultRouter, discoverRelay, interfacesOf, writeSetup } from './device.ts';
import { OnboardingError, onboard } from './onboard.ts';

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

describe('Z1 tips-client onboard: finding the gateway\'s onboarding relay', () => {
  it('the default router of the boot interface from /proc/net/route (little-endian hex), none without a default route', () => {
    const routes = join(dir, 'route');
    writeFileSync(
      routes,
      [
        'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT',
        'eth1\t00000000\t0101A8C0\t0003\t0\t0\t200\t00000000\t0\t0\t0',
        'eth0\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0',
        'eth0\t00000000\t01014B0A\t0003\t0\t0\t100\t00000000\t0\t0\t0',
      ].join('\n'),
    );
    expect(defaultRouter('eth0', routes)).toBe('10.75.1.1');
    expect(defaultRouter('eth1', routes)).toBe('192.168.1.1');
    expect(defaultRouter('wlan0', routes)).toBeUndefined();
    expect(defaultRouter(undefined, join(dir, 'no-such-file'))).toBeUndefined();
  });

  it('the relay is used only when the probe answers as one; another answer or nothing listening means none', async () => {
    const calls: string[] = [];
    const fake = (body: unknown, status = 200) => (async (u: URL | RequestInfo) => {
      calls.push(String(u));
      return new Response(JSON.stringify(body), { status });
    }) as typeof fetch;
    expect(await discoverRelay('10.75.1.1', fake({ relay: 'tips-onboarding' }))).toBe('http://10.75.1.1:8071');
    expect(calls).toEqual(['http://10.75.1.1:8071/api/onboarding-relay/v1']);
    expect(await discoverRelay('10.75.1.1', fake({ relay: 'something else' }))).toBeUndefined();
    expect(await discoverRelay('10.75.1.1', fake({ relay: 'tips-onboarding' }, 404))).toBeUndefined();
    expect(await discoverRelay(undefined, fake({ relay: 'tips-onboarding' }))).toBeUndefined();
    // A real closed port: refused, so not tried again (only a probe that timed out is).
    const server = http.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((r) => server.close(() => r()));
    let tries = 0;
    const refused = ((u: URL) => {
      tries++;
      return fetch(String(u).replace(':8071', `:${port}`));
    }) as typeof fetch;
    expect(await discoverRelay('127.0.0.1', refused)).toBeUndefined();
    expect(tries).toBe(1);
  });
});


describe('Z1 a gateway onboards only its owner\'s devices: the relay forwards to its own master alone', () => {
  it('a device whose owner is not the gateway\'s is told so: relay_owner_unknown, naming the reason', async () => {
    // The relay (a real listener) answers TO1 as a gateway relay does for a device its master does
    // not know: the master's 404 guid_unknown, passed back. The device's own rendezvous address is
    // out of reach (a closed port, as the gateway's firewall leaves it to a Blocked MAC).
    const seen: string[] = [];
    const relay = http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'guid_unknown', message: 'rendezvous holds no registration for this device', field: 'guid' }, requestId: 'r' }));
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', () => r()));
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    try {
      const mfr = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      const device = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      const { credential } = createVoucher({ guid: new Uint8Array(randomBytes(16)), deviceInfo: 'vendor=acme', rendezvous: rendezvousFromUrls([`http://127.0.0.1:${closedPort}`]), manufacturerKey: mfr.privateKey, deviceKey: device.publicKey, hmacSecret: new Uint8Array(randomBytes(32)) });
      const relayUrl = `http://127.0.0.1:${(relay.address() as AddressInfo).port}`;
      const err = await onboard(decodeDeviceCredential(credential), device.privateKey, { relay: relayUrl, facts: { interfaces: [{ name: 'eth0', mac: '02:aa:00:00:00:01', type: 'ethernet', pxe: true }] } }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OnboardingError);
      expect((err as OnboardingError).code).toBe('relay_owner_unknown');
      expect((err as OnboardingError).step).toBe('rendezvous');
      expect((err as OnboardingError).message).toContain(`onboarding relay (${relayUrl}) forwards only to its own owner's master`);
      expect((err as OnboardingError).message).toContain('belongs to another owner');
      // Only TO1's first step went to the relay; nothing of TO2 was attempted.
      expect(seen).toEqual(['POST /api/rendezvous/v1/hello']);
      // Another refusal by the relay (not "unknown device") keeps the generic reason.
      seen.length = 0;
      relay.removeAllListeners('request');
      relay.on('request', (_req, res) => res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'interface_blocked', message: 'this interface is blocked by its owner' }, requestId: 'r' })));
      const other = await onboard(decodeDeviceCredential(credential), device.privateKey, { relay: relayUrl, facts: { interfaces: [{ name: 'eth0', mac: '02:aa:00:00:00:01', type: 'ethernet', pxe: true }] } }).catch((e: unknown) => e);
      expect((other as OnboardingError).code).toBe('rendezvous_failed');
    } finally {
      await new Promise<void>((r) => relay.close(() => r()));
    }
  });
});
