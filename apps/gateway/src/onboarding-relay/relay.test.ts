// The onboarding relay over loopback against an in-test master stand-in that checks the gateway's
// TIPS-GW-1 signature (unit scope; e2e/onboarding-fleet and e2e/containment run the real master).
import { createPublicKey } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMetrics, type GatewayMetrics } from '../status/metrics.ts';
import { MasterClient } from '../uplink/client.ts';
import { HEADER, privateKeyFromSeed, verifyRequest } from '../uplink/sign.ts';
import { OnboardingRelay, type RelayAdmission, SourceRateLimit } from './relay.ts';

const key = privateKeyFromSeed(new Uint8Array(32).fill(9));
const log = pino({ level: 'silent' });

let master: http.Server;
let seen: { method: string; url: string; body: string; signed: boolean }[];
let answer: (url: string) => [number, string];
let relay: OnboardingRelay;
let metrics: GatewayMetrics;
let admission: RelayAdmission;
let provedMacs: string[];

async function start(limits = {}) {
  metrics = createMetrics();
  relay = new OnboardingRelay({
    address: '127.0.0.1',
    port: 0,
    master: new MasterClient(`http://127.0.0.1:${(master.address() as AddressInfo).port}`, 'gwy_test', key, 2000),
    admit: () => admission,
    proved: async (mac) => {
      provedMacs.push(mac);
      return true;
    },
    log,
    metrics,
    limits,
  });
  await relay.start();
}

const call = async (method: string, path: string, body?: string, type = 'application/json') => {
  const res = await fetch(`http://127.0.0.1:${relay.port}${path}`, { method, ...(body !== undefined ? { body, headers: { 'content-type': type } } : {}) });
  return { status: res.status, json: (await res.json()) as { error?: { code: string }; relay?: string; ok?: boolean } };
};
const count = async (route: string, outcome: string) => (await metrics.onboardingRelayRequests.get()).values.find((v) => v.labels.route === route && v.labels.outcome === outcome)?.value ?? 0;

beforeEach(async () => {
  seen = [];
  provedMacs = [];
  admission = { admit: true, mac: '02:00:00:00:00:01' };
  answer = () => [200, '{"ok":true}'];
  master = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => {
      body += d;
    });
    req.on('end', () => {
      const h = (n: string) => String(req.headers[n] ?? '');
      const signed =
        h(HEADER.gateway) === 'gwy_test' &&
        verifyRequest(createPublicKey(key), { method: req.method!, pathWithQuery: req.url!, timestamp: Number(h(HEADER.timestamp)), nonce: h(HEADER.nonce), body: Buffer.from(body) }, h(HEADER.signature));
      seen.push({ method: req.method!, url: req.url!, body, signed });
      const [status, text] = answer(req.url!);
      res.writeHead(status, { 'content-type': 'application/json' }).end(text);
    });
  });
  await new Promise<void>((r) => master.listen(0, '127.0.0.1', () => r()));
});

afterEach(async () => {
  await relay?.stop();
  await new Promise<void>((r) => master.close(() => r()));
});

describe('Z1 issue 11: the gateway onboarding relay forwards only the onboarding routes', () => {
  it('forwards each onboarding route, signed, with the body as sent, and passes the master\'s answer back — refusals included', async () => {
    await start();
    for (const path of ['/api/rendezvous/v1/hello', '/api/rendezvous/v1/prove', '/api/onboarding/v1/hello']) {
      expect(await call('POST', path, '{"guid":"g"}')).toEqual({ status: 200, json: { ok: true } });
    }
    answer = () => [409, '{"error":{"code":"voucher_used","message":"spent"},"requestId":"r"}'];
    expect(await call('POST', '/api/onboarding/v1/prove', '{"guid":"g"}')).toMatchObject({ status: 409, json: { error: { code: 'voucher_used' } } });
    expect(seen.map((s) => [s.url, s.body, s.signed])).toEqual([
      ['/api/rendezvous/v1/hello', '{"guid":"g"}', true],
      ['/api/rendezvous/v1/prove', '{"guid":"g"}', true],
      ['/api/onboarding/v1/hello', '{"guid":"g"}', true],
      ['/api/onboarding/v1/prove', '{"guid":"g"}', true],
    ]);
    // A refused proof is not an onboarded device: the gateway is not asked to wait for it.
    expect(provedMacs).toEqual([]);
    expect(await count('to2-prove', 'refused_by_master')).toBe(1);
  });

  it('after a successful TO2 prove, answers only once the gateway says the attested MAC is settled', async () => {
    await start();
    expect((await call('POST', '/api/onboarding/v1/prove', '{"guid":"g"}')).status).toBe(200);
    expect(provedMacs).toEqual(['02:00:00:00:00:01']);
  });

  it('anything else is 404 from the relay and never reaches the master; wrong method 405, wrong type 415, no body 400, too large 413', async () => {
    await start({ maxBody: 64 });
    for (const path of ['/api/v1/metals', '/api/gateway/v1/registrations', '/.well-known/est/simpleenroll', '/api/onboarding/v1/hello/../../v1/metals', '/']) {
      expect(await call('POST', path, '{}')).toMatchObject({ status: 404, json: { error: { code: 'not_found' } } });
    }
    expect(await call('GET', '/api/onboarding/v1/hello')).toMatchObject({ status: 405, json: { error: { code: 'method_not_allowed' } } });
    expect(await call('POST', '/api/onboarding/v1/hello', 'guid=g', 'application/x-www-form-urlencoded')).toMatchObject({ status: 415, json: { error: { code: 'unsupported_media_type' } } });
    expect(await call('POST', '/api/onboarding/v1/hello', '')).toMatchObject({ status: 400, json: { error: { code: 'body_missing' } } });
    expect(await call('POST', '/api/onboarding/v1/hello', JSON.stringify({ pad: 'x'.repeat(100) }))).toMatchObject({ status: 413, json: { error: { code: 'body_too_large' } } });
    expect(seen).toEqual([]);
    expect(await count('other', 'not_found')).toBe(5);
  });

  it('a source the gateway does not admit (no lease, blocked by its owner) gets 403 and nothing is forwarded', async () => {
    await start();
    admission = { admit: false, code: 'interface_blocked', message: 'blocked' };
    expect(await call('POST', '/api/onboarding/v1/hello', '{}')).toMatchObject({ status: 403, json: { error: { code: 'interface_blocked' } } });
    admission = { admit: false, code: 'no_lease', message: 'no lease' };
    expect(await call('GET', '/api/onboarding-relay/v1')).toMatchObject({ status: 403, json: { error: { code: 'no_lease' } } });
    expect(seen).toEqual([]);
  });

  it('the probe is answered by the relay itself; the master unreachable is 502', async () => {
    await start();
    expect(await call('GET', '/api/onboarding-relay/v1')).toMatchObject({ status: 200, json: { relay: 'tips-onboarding' } });
    await new Promise<void>((r) => master.close(() => r()));
    master = http.createServer();
    expect(await call('POST', '/api/rendezvous/v1/hello', '{}')).toMatchObject({ status: 502, json: { error: { code: 'master_unreachable' } } });
  });

  it('rate-limits per source: past the burst, 429 and nothing forwarded until tokens come back', async () => {
    await start({ burst: 3, perMinute: 6 });
    for (let i = 0; i < 3; i++) expect((await call('POST', '/api/rendezvous/v1/hello', '{}')).status).toBe(200);
    expect(await call('POST', '/api/rendezvous/v1/hello', '{}')).toMatchObject({ status: 429, json: { error: { code: 'rate_limited' } } });
    expect(seen).toHaveLength(3);
    let t = 0;
    const limit = new SourceRateLimit(2, 60, () => t);
    expect([limit.take('a'), limit.take('a'), limit.take('a'), limit.take('b')]).toEqual([true, true, false, true]);
    t = 1000;
    expect([limit.take('a'), limit.take('a')]).toEqual([true, false]);
  });
});

describe('Z1/T6 DHCP for Blocked MACs with the onboarding relay (dhcpAdmission)', () => {
  it('without the relay every Blocked interface is refused; with it only the unknown-MAC ones are served', async () => {
    const { dhcpAdmission } = await import('./dhcp-admission.ts');
    const unknown = { state: 'blocked', reason: 'unknown_mac' };
    const byOwner = { state: 'blocked', reason: 'metal_blocked' };
    for (const relayOn of [false, true]) {
      expect(dhcpAdmission(undefined, relayOn)).toBe('serve');
      expect(dhcpAdmission({ state: 'pending', reason: null }, relayOn)).toBe('serve');
      expect(dhcpAdmission({ state: 'active', reason: null }, relayOn)).toBe('serve');
      expect(dhcpAdmission(byOwner, relayOn)).toBe('refuse');
      expect(dhcpAdmission({ state: 'blocked', reason: null }, relayOn)).toBe('refuse');
    }
    expect(dhcpAdmission(unknown, false)).toBe('refuse');
    expect(dhcpAdmission(unknown, true)).toBe('serve');
  });
});
