// Issue 11 test 1 (Z1 Z3 Z4 S14): twenty devices from the factory onboard themselves. Vouchers go
// manufacturer → distributor → owner with `tips factory`; the owner imports them and registers them
// at rendezvous; each device is a namespace whose only link is the TIPS gateway's LAN (busybox
// udhcpc: its row is Blocked, unknown MAC — nobody declared it) running the real tips-client
// bundle. Blocked, it reaches nothing but the gateway's onboarding relay (found at its DHCP router,
// well-known port): rendezvous → owner → proof → sealed setup, all through the relay; the master
// makes it a metal and tells the gateway to clear its record, the gateway registers it again at once
// and it is Active before the relay answers the proof; then EST and the profile go straight to the
// master. No `tips metal create`, no MAC typed anywhere, no link but the gateway's LAN: the only
// MACs are the ones the kernel gave the devices' interfaces.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type NsProcess, until } from '@tips/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_BUNDLE } from './client-master.ts';
import { GATEWAY_BIN, GatewayLab, type Metal, randomMac } from './gateway-topology.ts';
import { tips } from './helpers.ts';

const DEVICES = 20;
const ADDR = { masterIp: '10.91.0.1', gatewayUplinkIp: '10.91.0.2', gatewayLanIp: '10.91.1.1' };
const MASTER = `http://${ADDR.masterIp}:8080`;

let lab: GatewayLab;
let work: string;
let env: NodeJS.ProcessEnv;
// biome-ignore lint/suspicious/noExplicitAny: --json answers of whichever command was run
const json = (args: string[]): any => {
  const r = tips([...args, '--json'], env);
  if (r.status !== 0) throw new Error(`tips ${args.join(' ')} → ${r.status}\n${r.stderr}`);
  return JSON.parse(r.stdout);
};
let made: { guid: string; credential: string; deviceKey: string; voucher: string }[];
const devices: { metal: Metal; mac: string; guid: string }[] = [];

/** The gateway's whole interface table, read once (one `tips-gateway table` run for all twenty). */
async function table(): Promise<Map<string, { state: string; tipsId: string | null; reason: string | null }>> {
  const r = await lab.gw.execOk('node', [GATEWAY_BIN, 'table', '--data-dir', lab.gatewayDataDir, '--json']);
  return new Map((JSON.parse(r.stdout) as { rows: { mac: string; state: string; tipsId: string | null; reason: string | null }[] }).rows.map((x) => [x.mac, x]));
}
async function allInState(state: string, timeoutMs: number) {
  return until(
    `all ${DEVICES} interfaces ${state}`,
    async () => {
      const t = await table();
      return devices.every((d) => t.get(d.mac)?.state === state) ? t : undefined;
    },
    timeoutMs,
    500,
  );
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'tips-e2e-fleet-'));
  lab = await GatewayLab.start('onbf', ADDR, ['--onboarding-relay', '--status-port', '9467'], { masterArgs: ['--tls-hostname', ADDR.masterIp, '--public-url', MASTER] });
  env = { TIPS_CONFIG: join(work, 'none.json'), TIPS_URL: lab.masterUrl, TIPS_TOKEN: lab.adminToken };

  // The supply chain: the manufacturer makes the devices and signs them over to the distributor, who signs them over to the owner.
  json(['factory', 'key', 'create', '--out', join(work, 'mfr.key')]);
  json(['factory', 'key', 'create', '--out', join(work, 'dist.key')]);
  json(['voucher', 'owner-key', 'create', 'fleet', '--out', join(work, 'owner.pub')]);
  made = json([
    ...['factory', 'device', 'create', '--manufacturer-key', join(work, 'mfr.key'), '--rendezvous', MASTER],
    ...['--info', 'vendor=acme', '--info', 'class=sensor', '--count', String(DEVICES), '--out-dir', join(work, 'devices'), '--to', join(work, 'dist.key.pub')],
  ]).devices;
  json(['factory', 'voucher', 'extend', ...made.map((d) => d.voucher), '--to', join(work, 'owner.pub'), '--key', join(work, 'dist.key')]);

  // The owner's side: import, say what such devices become, point rendezvous at this master.
  expect(json(['voucher', 'import', join(work, 'devices')]).imported).toBe(DEVICES);
  const p2 = json(['space', 'create', '--name', 'fleet-p2', '--phase', '2']);
  json(['bootstrap', 'profile', 'create', 'acme-sensors', '--vendor', 'acme', '--class', 'sensor', '--space', lab.phase1Space, '--space', p2.id]);
  json(['voucher', 'register', ...made.map((d) => d.guid)]);
  // An operator key, so the trust list the clients fetch after enrolling exists (as on any fleet).
  await lab.api('POST', '/api/v1/keys', { name: 'fleet-ops', serverHeld: true });

  // The devices: each a namespace with one link, on the gateway's LAN (DHCP from the gateway).
  for (const d of made) {
    const mac = randomMac();
    const metal = await lab.startMetal([mac]);
    devices.push({ metal, mac, guid: d.guid });
  }
  await Promise.all(devices.map((d) => lab.leased(d.metal)));
}, 240_000);

afterAll(async () => {
  await lab?.destroy();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('Z1 Z3 Z4 S14 issue 11: twenty devices power on, onboard, become metals in the profile\'s Spaces, enroll, and end Active at the gateway', { timeout: 240_000 }, () => {
  it('before onboarding no device is known: each interface is Blocked (unknown MAC), reaches neither the master nor its rendezvous directly, and no metal exists', async () => {
    const t = await allInState('blocked', 90_000);
    for (const d of devices) expect(t.get(d.mac)?.reason).toBe('unknown_mac');
    expect(json(['metal', 'list'])).toEqual([]);
    const direct = await devices[0]!.metal.ns.exec('curl', ['-s', '-m', '2', '-o', '/dev/null', '-w', '%{http_code}', `${MASTER}/readyz`], { timeoutMs: 10_000 });
    expect(direct.code).not.toBe(0);
  });

  it('each device runs `tips-client onboard` with only its factory credential: all twenty enroll and register their profile', async () => {
    const clients: NsProcess[] = devices.map((d, n) =>
      d.metal.ns.spawn(
        process.execPath,
        [
          CLIENT_BUNDLE,
          'onboard',
          ...['--device-credential', made[n]!.credential, '--interface', 'eth0'],
          ...['--config', join(work, `etc-${n}`, 'config.json'), '--state-dir', join(work, `state-${n}`), '--log-level', 'warn', '--json'],
        ],
        { label: `tips-client ${n}` },
      ),
    );
    await until('every tips-client onboard exited', async () => clients.every((c) => !c.running), 180_000, 250);
    for (const [n, c] of clients.entries()) expect(c.exitCode, `device ${n}: ${c.output.slice(-2000)}`).toBe(0);
    const outs = clients.map((c) => JSON.parse(/\{.*"onboarded".*\}/.exec(c.output)![0]));
    expect(outs.every((o) => o.onboarded === true && o.status === 'enrolled' && o.profile === 'acme-sensors')).toBe(true);
    // Each found the relay at its DHCP router and went through it; the owner it names is the master.
    expect(outs.every((o) => o.relay === `http://${ADDR.gatewayLanIp}:8071` && o.owner === MASTER)).toBe(true);

    // The owner sees twenty metals made from what the devices reported, in the profile's Spaces.
    const metals: { id: string; name: string; interfaces: { mac: string }[]; labels: Record<string, string> }[] = json(['metal', 'list']);
    expect(metals).toHaveLength(DEVICES);
    expect(metals.flatMap((m) => m.interfaces.map((i) => i.mac)).sort()).toEqual(devices.map((d) => d.mac).sort());
    for (const m of metals) expect(m.labels).toMatchObject({ vendor: 'acme', class: 'sensor', 'onboarding/profile': 'acme-sensors' });
    const onboardings: { guid: string; status: string; metal: string }[] = json(['onboarding', 'list']);
    expect(onboardings.filter((o) => o.status === 'enrolled').map((o) => o.guid).sort()).toEqual(made.map((d) => d.guid).sort());
    const p1: { members: { metalId: string; isDefault: boolean }[] } = json(['space', 'show', lab.phase1Space]);
    expect(p1.members.map((x) => x.metalId).sort()).toEqual(metals.map((m) => m.id).sort());
    expect(p1.members.every((x) => x.isDefault)).toBe(true);
    const p2: { members: { metalId: string }[] } = json(['space', 'show', 'fleet-p2']);
    expect(p2.members).toHaveLength(DEVICES);
    // Each kept its setup durably (config.json, enrollment.json spent and removed) and holds a certificate.
    for (const n of [0, DEVICES - 1]) {
      expect(readdirSync(join(work, `etc-${n}`)).sort()).toEqual(['ca.pem', 'config.json']);
      expect(readdirSync(join(work, `state-${n}`, 'identity'))).toContain('current');
    }
    // A fresh connection: the master may have closed an idle keep-alive one while the clients ran.
    const metrics = await until('metrics', async () => (await fetch(`${lab.masterUrl}/metrics`, { headers: { connection: 'close' } }).catch(() => undefined))?.text(), 10_000);
    expect(metrics).toMatch(new RegExp(`tips_master_onboardings_total\\{result="enrolled"\\} ${DEVICES}`));
  });

  it('every interface is Active at the gateway, as the metal the device became, with no lease renewal; the relay forwarded every step', async () => {
    const byMac = new Map((json(['metal', 'list']) as { id: string; interfaces: { mac: string }[] }[]).map((m) => [m.interfaces[0]!.mac, m.id]));
    const t = await table();
    for (const d of devices) expect(t.get(d.mac)).toMatchObject({ state: 'active', tipsId: byMac.get(d.mac) });
    // No udhcpc renewed: each bound once.
    for (const d of devices) expect(d.metal.dhcp[0]!.output.match(/lease of \S+ obtained/g)).toHaveLength(1);
    const metrics = (await lab.gw.execOk('curl', ['-s', 'http://127.0.0.1:9467/metrics'])).stdout;
    for (const route of ['to1-hello', 'to1-prove', 'to2-hello', 'to2-prove']) expect(metrics).toContain(`tips_gateway_onboarding_relay_requests_total{route="${route}",outcome="ok"} ${DEVICES}`);
  });

  it('the same credential again is refused (the voucher is spent) and nothing is created', async () => {
    const before = json(['metal', 'list']).length;
    const again = devices[0]!.metal.ns.spawn(process.execPath, [CLIENT_BUNDLE, 'onboard', '--device-credential', made[0]!.credential, '--interface', 'eth0', '--config', join(work, 'etc-replay', 'config.json'), '--state-dir', join(work, 'state-replay')], {
      label: 'tips-client replay',
    });
    await until('replay exited', async () => !again.running, 60_000);
    expect(again.exitCode).toBe(3);
    expect(again.output).toContain('voucher_used');
    expect(json(['metal', 'list']).length).toBe(before);
    expect(json(['onboarding', 'show', made[0]!.guid]).events.at(-1).reason).toMatch(/voucher_used/);
  });
});
