// T7 containment end to end: the real tips-gateway (decisions from the real master) and real TCP
// services on the gateway host — one on the boot port of its LAN address, one on another port of the
// LAN address, one on its uplink address where a master on its default port would be. Pending may
// reach only the first; Blocked none; Active is forwarded to the outside.
import { until } from '@tips/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOOT_PORTS } from '../apps/gateway/src/enforcer/enforcer.ts';
import { httpFrom, startServices } from '../apps/gateway/src/enforcer/testing.ts';
import { GatewayLab, type Metal, randomMac } from './gateway-topology.ts';

const ADDR = { masterIp: '10.97.0.1', gatewayUplinkIp: '10.97.0.2', gatewayLanIp: '10.75.0.1' };
const EXTERNAL_IP = '10.97.0.100';
const BOOT = BOOT_PORTS.httpTcp;
const OTHER = 8081;

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
    lab = await GatewayLab.start('cont', ADDR, ['--boot-http-port', String(BOOT), '--pending-timeout', '60s']);
    await lab.cloud.addAddress('eth0', `${EXTERNAL_IP}/24`);
    await startServices(lab.cloud, [`http:${EXTERNAL_IP}:80`]);
    await startServices(lab.gw, [`http:${ADDR.gatewayLanIp}:${BOOT}`, `http:${ADDR.gatewayLanIp}:${OTHER}`, `http:${ADDR.gatewayUplinkIp}:${BOOT}`]);
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

  it('Pending (master unreachable) reaches the boot port on the LAN address only: not another port, not the uplink address, not the outside', async () => {
    const mac = randomMac();
    await lab.declareMetal('cont-pending', mac);
    await lab.master.stop();
    const m = await lab.startMetal([mac]);
    const ip = await lab.leased(m);
    expect((await lab.rowInState(mac, 'pending')).tipsId).toBeNull();
    expect(await reach(m)).toEqual({ boot: `${ADDR.gatewayLanIp}:${BOOT} from ${ip}`, other: null, uplink: null, external: null });
  });
});
