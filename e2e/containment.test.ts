// T7 containment end to end: the real tips-gateway (decisions from the real master) and real TCP
// services on the gateway host — one on the boot port of its LAN address, one on another port of the
// LAN address, one on its uplink address where a master on its default port would be. Pending may
// reach only the first; Blocked none; Active is forwarded to the outside. With the onboarding relay
// on (issue 11), every leased source also reaches the relay's port on the LAN address — and there
// only the onboarding routes, forwarded to the master; still nothing else.
import { readFileSync } from 'node:fs';
import { ONBOARDING_RELAY_PORT } from '@tips/onboarding';
import { type Namespace, until } from '@tips/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOOT_PORTS } from '../apps/gateway/src/enforcer/enforcer.ts';
import { httpFrom, startServices } from '../apps/gateway/src/enforcer/testing.ts';
import { GATEWAY_BIN, GatewayLab, type Metal, randomMac } from './gateway-topology.ts';

const ADDR = { masterIp: '10.97.0.1', gatewayUplinkIp: '10.97.0.2', gatewayLanIp: '10.75.0.1' };
const EXTERNAL_IP = '10.97.0.100';
const BOOT = BOOT_PORTS.httpTcp;
const OTHER = 8081;
const RELAY = ONBOARDING_RELAY_PORT;
const STATUS = 9467;

/** curl from the metal to the relay: status and body (the relay's or the master's answer), or null when nothing answered. */
async function relayFrom(ns: Namespace, host: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: { relay?: string; error?: { code: string } } } | null> {
  const r = await ns.exec('curl', [
    ...['-s', '-m', '5', '-X', method, '-w', '\n%{http_code}'],
    ...(body === undefined ? [] : ['-H', 'content-type: application/json', '--data-binary', JSON.stringify(body)]),
    `http://${host}:${RELAY}${path}`,
  ], { timeoutMs: 15_000 });
  if (r.code !== 0) return null;
  const at = r.stdout.lastIndexOf('\n');
  return { status: Number(r.stdout.slice(at + 1)), body: JSON.parse(r.stdout.slice(0, at) || '{}') };
}

/** The gateway's relay counter for one route and outcome (its status server, inside the gateway's namespace). */
async function relayCount(route: string, outcome: string): Promise<number> {
  const text = (await lab.gw.execOk('curl', ['-s', `http://127.0.0.1:${STATUS}/metrics`])).stdout;
  const m = new RegExp(`^tips_gateway_onboarding_relay_requests_total\\{route="${route}",outcome="${outcome}"\\} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

let lab: GatewayLab;

/** What a metal reaches, probed in parallel: the answer of each service, or null. */
async function reach(m: Metal) {
  const [boot, other, uplink, external] = await Promise.all([
    httpFrom(m.ns, ADDR.gatewayLanIp, BOOT),
    httpFrom(m.ns, ADDR.gatewayLanIp, OTHER),
    httpFrom(m.ns, ADDR.gatewayUplinkIp, BOOT),
    httpFrom(m.ns, EXTERNAL_IP, 80),
  ]);
  return { boot, other, uplink, external };
}

describe('T7 containment: what Pending, Blocked and Active metals reach on and through the real gateway', () => {
  beforeAll(async () => {
    lab = await GatewayLab.start('cont', ADDR, ['--boot-http-port', String(BOOT), '--pending-timeout', '60s', '--onboarding-relay', '--status-port', String(STATUS)]);
    await lab.cloud.addAddress('eth0', `${EXTERNAL_IP}/24`);
    await startServices(lab.cloud, [`http:${EXTERNAL_IP}:80`]);
    // The relay's port on the uplink address (where the relay does not listen) must stay out of reach too.
    await startServices(lab.gw, [`http:${ADDR.gatewayLanIp}:${BOOT}`, `http:${ADDR.gatewayLanIp}:${OTHER}`, `http:${ADDR.gatewayUplinkIp}:${BOOT}`, `http:${ADDR.gatewayUplinkIp}:${RELAY}`]);
  }, 180_000);

  afterAll(async () => {
    await lab?.destroy();
  });

  it('Active (declared, default Space) reaches the boot port and is forwarded to the outside, masqueraded; nothing else of the gateway', async () => {
    const mac = randomMac();
    await lab.declareMetal('cont-active', mac);
    const m = await lab.startMetal([mac]);
    const ip = await lab.leased(m);
    await lab.rowInState(mac, 'active');
    // The row is Active before the rules that grant it are loaded: wait for the forward.
    const external = await until('forwarding to the outside', async () => (await httpFrom(m.ns, EXTERNAL_IP, 80)) ?? undefined);
    expect(external).toBe(`${EXTERNAL_IP}:80 from ${ADDR.gatewayUplinkIp}`);
    expect(await reach(m)).toEqual({
      boot: `${ADDR.gatewayLanIp}:${BOOT} from ${ip}`,
      other: null,
      uplink: null,
      external: `${EXTERNAL_IP}:80 from ${ADDR.gatewayUplinkIp}`,
    });
  });

  it('Blocked (undeclared MAC) reaches nothing: not the boot port, not another port, not the uplink address, not the outside', async () => {
    const mac = randomMac();
    const m = await lab.startMetal([mac]);
    await lab.leased(m);
    expect((await lab.rowInState(mac, 'blocked')).reason).toBe('unknown_mac');
    expect(await reach(m)).toEqual({ boot: null, other: null, uplink: null, external: null });
  });

  it('issue 11 Z1: Blocked (undeclared MAC) reaches the onboarding relay — only its onboarding routes, forwarded to the master — and still nothing else', async () => {
    const mac = randomMac();
    const m = await lab.startMetal([mac]);
    await lab.leased(m);
    expect((await lab.rowInState(mac, 'blocked')).reason).toBe('unknown_mac');
    // The relay answers its probe; an onboarding route reaches the master (which knows no such device: its own 404, passed back).
    expect(await relayFrom(m.ns, ADDR.gatewayLanIp, 'GET', '/api/onboarding-relay/v1')).toMatchObject({ status: 200, body: { relay: 'tips-onboarding' } });
    const forwarded = await relayFrom(m.ns, ADDR.gatewayLanIp, 'POST', '/api/rendezvous/v1/hello', { guid: '00000000-0000-4000-8000-000000000000' });
    expect(forwarded?.status).toBeGreaterThanOrEqual(400);
    expect(forwarded?.status).toBeLessThan(500);
    expect(forwarded?.body.error?.code).not.toBe('not_found');
    expect(await relayCount('to1-hello', 'refused_by_master')).toBe(1);
    // Any other route of the master through the relay: 404 from the relay, counted, never forwarded.
    const before = await relayCount('other', 'not_found');
    for (const path of ['/api/v1/metals', '/api/gateway/v1/registrations', '/.well-known/est/simpleenroll', '/metrics']) {
      expect(await relayFrom(m.ns, ADDR.gatewayLanIp, 'POST', path, {})).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
    }
    expect(await relayCount('other', 'not_found')).toBe(before + 4);
    // An onboarding route with the wrong method is refused by the relay, not forwarded.
    expect((await relayFrom(m.ns, ADDR.gatewayLanIp, 'GET', '/api/onboarding/v1/hello'))?.status).toBe(405);
    // Still nothing else: not the boot port, another port, the uplink address (not even the relay's port there), the outside.
    expect(await reach(m)).toEqual({ boot: null, other: null, uplink: null, external: null });
    expect(await httpFrom(m.ns, ADDR.gatewayUplinkIp, RELAY)).toBeNull();
    expect((await lab.row(mac))?.state).toBe('blocked');
  });

  it('issue 11 Z1: a Blocked (undeclared) MAC renews its lease, and gets a new one after losing it, with the relay on — and still reaches the relay only', async () => {
    const mac = randomMac();
    const m = await lab.startMetal([mac]);
    const ip = await lab.leased(m);
    expect((await lab.rowInState(mac, 'blocked')).reason).toBe('unknown_mac');
    const events = (kind: string) => readFileSync(m.events, 'utf8').split('\n').filter((l) => l.startsWith(`${kind} eth0 `));
    // Renewal while Blocked (udhcpc SIGUSR1): acknowledged (without the relay a Blocked MAC is refused, T6).
    m.dhcp[0]!.signal('SIGUSR1');
    expect(await until('renewal acknowledged while Blocked', async () => events('renew')[0], 30_000)).toContain(ip);
    // The lease is gone (released, as after a power-off), then the device asks afresh: a new lease.
    m.dhcp[0]!.signal('SIGUSR2');
    await until('lease released', async () => {
      const r = await lab.gw.execOk('node', [GATEWAY_BIN, 'leases', '--data-dir', lab.gatewayDataDir, '--json']);
      return (JSON.parse(r.stdout) as { leases: { ip: string; mac: string; state: string }[] }).leases.find((l) => l.mac === mac && l.state === 'released');
    });
    m.dhcp[0]!.signal('SIGUSR1');
    await until('bound again while Blocked', async () => (events('bound').length >= 2 ? true : undefined), 30_000);
    const again = events('bound').at(-1)!.split(' ')[2]!;
    expect((await lab.row(mac))?.state).toBe('blocked');
    // From the new lease: the relay answers (it admits the leaseholder) and nothing else is reached.
    expect(await until('relay from the new lease', async () => (await relayFrom(m.ns, ADDR.gatewayLanIp, 'GET', '/api/onboarding-relay/v1')) ?? undefined)).toMatchObject({ status: 200, body: { relay: 'tips-onboarding' } });
    expect(await reach(m)).toEqual({ boot: null, other: null, uplink: null, external: null });
    expect(await httpFrom(m.ns, ADDR.gatewayUplinkIp, RELAY)).toBeNull();
    expect(again).toMatch(/^10\.75\.0\.\d+$/);
  });

  it('Pending (master unreachable) reaches the boot port on the LAN address only: not another port, not the uplink address, not the outside', async () => {
    const mac = randomMac();
    await lab.declareMetal('cont-pending', mac);
    await lab.master.stop();
    const m = await lab.startMetal([mac]);
    const ip = await lab.leased(m);
    expect((await lab.rowInState(mac, 'pending')).tipsId).toBeNull();
    expect(await reach(m)).toEqual({ boot: `${ADDR.gatewayLanIp}:${BOOT} from ${ip}`, other: null, uplink: null, external: null });
    // The relay's port too (issue 11): its onboarding routes answer 502 while the master is away, the rest 404.
    expect(await relayFrom(m.ns, ADDR.gatewayLanIp, 'POST', '/api/onboarding/v1/hello', { guid: 'x' })).toMatchObject({ status: 502, body: { error: { code: 'master_unreachable' } } });
    expect(await relayFrom(m.ns, ADDR.gatewayLanIp, 'GET', '/api/v1/metals')).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
    expect(await httpFrom(m.ns, ADDR.gatewayUplinkIp, RELAY)).toBeNull();
  });
});
