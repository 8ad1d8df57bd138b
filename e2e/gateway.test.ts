// TIPS gateway end to end, over a real network built with ip netns: a "cloud" namespace (the real
// master + an external HTTP server), a gateway namespace (uplink + LAN bridge, the tips-gateway
// daemon, nftables, conntrack) and metal namespaces whose DHCP client is busybox udhcpc.
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type Namespace, type NsProcess, Topology, until } from '@tips/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');
const MASTER_BIN = join(ROOT, 'apps/master/bin/tips-master.js');
const GATEWAY_BIN = join(ROOT, 'apps/gateway/bin/tips-gateway.js');
const ADMIN_TOKEN = `tips_${randomBytes(24).toString('base64url')}`;
const MASTER_PORT = 8080;
const MASTER_IP = '10.99.0.1';
const EXTERNAL_IP = '10.99.0.100';
const EXTERNAL_PORT = 8081;
const GW_UPLINK_IP = '10.99.0.2';
const GW_LAN_IP = '10.77.0.1';
const NFT_TABLE = 'tips_gw';

// The DHCP client's hook: configure the address and a default route, record every event.
const UDHCPC_SCRIPT = `#!/bin/sh
echo "$1 $interface \${ip:-} siaddr=\${siaddr:-} tftp=\${tftp:-} bootfile=\${bootfile:-} boot_file=\${boot_file:-}" >> "$EVENTS"
case "$1" in
  deconfig) ip -4 addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip -4 addr replace "$ip/\${mask:-24}" dev "$interface"
    for r in $router; do ip route replace default via "$r" dev "$interface" metric "\${METRIC:-100}"; break; done ;;
esac
exit 0
`;

interface Metal {
  events: string;
  ns: Namespace;
  dhcp: NsProcess[];
  macs: string[];
}

let topo: Topology;
let cloud: Namespace;
let gw: Namespace;
let masterUrl: string;
let work: string;
let master: NsProcess;
let gateway: NsProcess;
let gwData: string;
let metalCount = 0;

async function api<T = Record<string, unknown>>(method: string, path: string, body?: unknown, expectStatus?: number): Promise<T> {
  const res = await fetch(`${masterUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (expectStatus !== undefined && res.status !== expectStatus) throw new Error(`${method} ${path} → ${res.status} ${text}`);
  if (res.status >= 400) throw new Error(`${method} ${path} → ${res.status} ${text}`);
  return (text ? JSON.parse(text) : {}) as T;
}

function startMaster(): NsProcess {
  const p = cloud.spawn('node', [MASTER_BIN, '--port', String(MASTER_PORT), '--host', '0.0.0.0', '--data-dir', join(work, 'master')], {
    env: { ...process.env, TIPS_BOOTSTRAP_ADMIN_TOKEN: ADMIN_TOKEN, TIPS_LOG_LEVEL: 'warn' },
    logFile: join(work, 'master.log'),
    label: 'tips-master',
  });
  return p;
}

async function masterReady(): Promise<void> {
  await until(
    'master /readyz',
    async () => {
      if (!master.running) throw new Error(`master exited (${master.exitCode}):\n${master.output.slice(-3000)}`);
      return (await fetch(`${masterUrl}/readyz`, { signal: AbortSignal.timeout(1000) })).status === 200;
    },
    // Generous: the machine's cores are shared with other suites and tsx transpiles on a cold start.
    90_000,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\nmaster output:\n${master.output.slice(-3000)}`);
  });
}

function startGateway(): NsProcess {
  return gw.spawn(
    'node',
    [
      GATEWAY_BIN,
      'run',
      '--lan',
      'br0',
      '--uplink',
      'up0',
      '--pool',
      '10.77.0.100-10.77.0.200',
      '--data-dir',
      gwData,
      '--lease-time',
      '600s',
      '--dns',
      GW_LAN_IP,
      '--retry-initial',
      '200ms',
      '--retry-max',
      '1s',
      '--pending-timeout',
      '3s',
      '--nat-sample',
      '300ms',
      '--nft-table',
      NFT_TABLE,
      '--status-port',
      '9467',
    ],
    { logFile: join(work, 'gateway.log'), label: 'tips-gateway' },
  );
}

async function gatewayCli<T>(...args: string[]): Promise<T> {
  const r = await gw.execOk('node', [GATEWAY_BIN, ...args, '--data-dir', gwData, '--json']);
  return JSON.parse(r.stdout) as T;
}

interface TableRow {
  mac: string;
  state: string;
  tipsId: string | null;
  ip: string | null;
  reason: string | null;
  gatewayInterface: string;
  nat: { protocol: string; localPort: number | null; destination: string; destinationPort: number | null; translatedAddress: string; outgoingPort: number | null }[];
}

async function row(mac: string): Promise<TableRow | undefined> {
  const t = await gatewayCli<{ rows: TableRow[] }>('table');
  return t.rows.find((r) => r.mac === mac);
}

async function rowInState(mac: string, state: string, timeoutMs = 20_000): Promise<TableRow> {
  return until(`${mac} ${state}`, async () => {
    const r = await row(mac);
    return r?.state === state ? r : undefined;
  }, timeoutMs);
}

function randomMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0]! & 0xfc) | 0x02; // locally administered, unicast
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':');
}

/** A metal namespace with one veth per MAC on the gateway's LAN bridge, each running udhcpc. */
async function startMetal(macs: string[], opts: { dhcp?: boolean; udhcpcArgs?: string[] } = {}): Promise<Metal> {
  const n = ++metalCount;
  const ns = await topo.namespace(`metal${n}`);
  await ns.sysctl('net.ipv4.conf.all.arp_ignore', '1');
  await ns.sysctl('net.ipv4.conf.all.arp_announce', '2');
  const events = join(work, `metal${n}.events`);
  writeFileSync(events, '');
  const dhcp: NsProcess[] = [];
  for (const [i, mac] of macs.entries()) {
    const port = `m${n}p${i}`;
    await topo.veth(ns, `eth${i}`, gw, port, { aMac: mac });
    await gw.enslave(port, 'br0');
    if (opts.dhcp === false) continue;
    dhcp.push(
      ns.spawn('udhcpc', ['-f', '-i', `eth${i}`, '-s', join(work, 'udhcpc.sh'), '-t', '3', '-T', '1', '-A', '1', '-x', `hostname:metal${n}-${i}`, ...(opts.udhcpcArgs ?? [])], {
        env: { ...process.env, EVENTS: events, METRIC: String(100 + i) },
        label: `udhcpc metal${n}/eth${i}`,
      }),
    );
  }
  return { ns, dhcp, macs, events };
}

async function leased(m: Metal, i = 0): Promise<string> {
  const match = await m.dhcp[i]!.waitFor(/lease of (\d+\.\d+\.\d+\.\d+) obtained/, 20_000);
  return match[1]!;
}

/** curl to the external server from the metal (optionally through one interface). */
async function reachesExternal(m: Metal, iface?: string, timeoutSec = 2): Promise<boolean> {
  const args = ['-s', '-m', String(timeoutSec), ...(iface ? ['--interface', iface] : []), `http://${EXTERNAL_IP}:${EXTERNAL_PORT}/hello.txt`];
  const r = await m.ns.exec('curl', args, { timeoutMs: (timeoutSec + 2) * 1000 });
  return r.code === 0 && r.stdout.includes('hello-from-cloud');
}

async function pings(m: Metal, target: string, iface?: string): Promise<boolean> {
  const r = await m.ns.exec('busybox', ['ping', '-c', '1', '-W', '1', ...(iface ? ['-I', iface] : []), target]);
  return r.code === 0;
}

async function declareMetal(name: string, ifaces: { name: string; mac: string }[], opts: { defaultSpace: string | null; spaces?: string[] }) {
  const metal = await api<{ id: string }>(
    'POST',
    '/api/v1/metals',
    { name, interfaces: ifaces.map((i) => ({ ...i, type: 'ethernet', pxe: true })) },
    201,
  );
  if (opts.defaultSpace) {
    await api('POST', `/api/v1/spaces/${opts.defaultSpace}/members`, { metal: metal.id, interfaces: [ifaces[0]!.name], default: true }, 201);
  }
  for (const s of opts.spaces ?? []) await api('POST', `/api/v1/spaces/${s}/members`, { metal: metal.id, interfaces: ifaces.map((i) => i.name) }, 201);
  return metal;
}

async function failuresFor(mac: string): Promise<{ mac: string; reason: string; gatewayId: string; ip: string }[]> {
  const r = await api<{ items: { mac: string; reason: string; gatewayId: string; ip: string }[] }>('GET', `/api/v1/discovery/failures?mac=${encodeURIComponent(mac)}`);
  return r.items;
}

let phase1Space: string;
let phase2Space: string;
let gatewayId: string;

describe('T5 T6 T7 T8 T9 T10 T11 T16 the gateway contains undeclared metals (netns, udhcpc, nftables, real master)', () => {
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'tgw-e2e-'));
    gwData = join(work, 'gateway');
    writeFileSync(join(work, 'udhcpc.sh'), UDHCPC_SCRIPT);
    chmodSync(join(work, 'udhcpc.sh'), 0o755);
    mkdirSync(join(work, 'www'));
    writeFileSync(join(work, 'www', 'hello.txt'), 'hello-from-cloud\n');

    topo = await Topology.create('gw');
    cloud = await topo.namespace('cloud');
    gw = await topo.namespace('gw');
    await topo.veth(cloud, 'eth0', gw, 'up0');
    await cloud.addAddress('eth0', `${MASTER_IP}/24`);
    await cloud.addAddress('eth0', `${EXTERNAL_IP}/24`);
    await gw.addAddress('up0', `${GW_UPLINK_IP}/24`);
    await gw.defaultRoute(MASTER_IP);
    await gw.bridge('br0');
    await gw.addAddress('br0', `${GW_LAN_IP}/24`);
    await gw.sysctl('net.ipv4.ip_forward', '1');
    // The cloud has no route to the metals' LAN: only NAT can bring answers back.
    const link = await topo.hostLink(cloud, 'h0');
    masterUrl = `http://${link.nsIp}:${MASTER_PORT}`;

    cloud.spawn('busybox', ['httpd', '-f', '-p', `${EXTERNAL_IP}:${EXTERNAL_PORT}`, '-h', join(work, 'www')], { label: 'external httpd' });
    master = startMaster();
    await masterReady();

    phase1Space = (await api<{ id: string }>('POST', '/api/v1/spaces', { name: 'lab-phase1', phase: 1 }, 201)).id;
    phase2Space = (await api<{ id: string }>('POST', '/api/v1/spaces', { name: 'lab-apps', phase: 2 }, 201)).id;
    const created = await api<{ gateway: { id: string }; enrollmentToken: string }>('POST', '/api/v1/gateways', { name: 'gw-lab' }, 201);
    const enrolled = await gw.execOk('node', [
      GATEWAY_BIN,
      'enroll',
      '--master',
      `http://${MASTER_IP}:${MASTER_PORT}`,
      '--token',
      created.enrollmentToken,
      '--data-dir',
      gwData,
      '--name',
      'gw-lab',
      '--json',
    ]);
    gatewayId = JSON.parse(enrolled.stdout).gatewayId;
    expect(gatewayId).toBe(created.gateway.id);
    // The credential is the key pair; the token is not kept anywhere in the data dir.
    const stored = ['gateway.json', 'gateway.key'].map((f) => readFileSync(join(gwData, f), 'utf8')).join('\n');
    expect(stored).not.toContain(created.enrollmentToken);
    expect(statSync(join(gwData, 'gateway.key')).mode & 0o777).toBe(0o600);

    gateway = startGateway();
    await gateway.waitFor(/"msg":"ready"/, 30_000);
  });

  afterAll(async () => {
    await topo?.destroy();
    if (work && !process.env.TGW_KEEP) rmSync(work, { recursive: true, force: true });
  });

  it('1. declared MAC with a default Space → lease → Active → reaches the external server through NAT; the table shows the translation', async () => {
    const mac = randomMac();
    const metal = await declareMetal('e2e-one', [{ name: 'eth0', mac }], { defaultSpace: phase1Space });
    const m = await startMetal([mac]);
    const ip = await leased(m);
    expect(ip).toMatch(/^10\.77\.0\.(1\d\d|200)$/);
    const r = await rowInState(mac, 'active');
    expect(r).toMatchObject({ tipsId: metal.id, ip, gatewayInterface: 'br0' });
    expect(await until('curl through NAT', async () => reachesExternal(m))).toBe(true);
    expect(await pings(m, EXTERNAL_IP)).toBe(true);
    // Keep a connection open so conntrack holds it while the table is sampled.
    const slow = m.ns.spawn('curl', ['-s', '--limit-rate', '1', '-o', '/dev/null', `http://${EXTERNAL_IP}:${EXTERNAL_PORT}/hello.txt`]);
    const nat = await until('NAT columns in the table', async () => {
      const t = await row(mac);
      return t?.nat.find((n) => n.protocol === 'tcp' && n.destinationPort === EXTERNAL_PORT);
    });
    slow.signal('SIGKILL');
    expect(nat).toMatchObject({ destination: EXTERNAL_IP, translatedAddress: GW_UPLINK_IP, protocol: 'tcp' });
    expect(nat.localPort).toBeGreaterThan(1023);
    expect(nat.outgoingPort).toBeGreaterThan(0);
    // The human table prints the same translation.
    const text = (await gw.execOk('node', [GATEWAY_BIN, 'table', '--data-dir', gwData])).stdout;
    expect(text).toMatch(new RegExp(`${metal.id}\\s+active\\s+ethernet\\s+${mac}\\s+${ip.replace(/\./g, '\\.')}`));
    // The master holds the gateway's latest table snapshot, translation included.
    const seen = await until('table snapshot at the master', async () => {
      const g = await api<{ table: { rows: TableRow[] } | null }>('GET', `/api/v1/gateways/${gatewayId}`);
      return g.table?.rows.find((x) => x.mac === mac && x.state === 'active' && x.nat.length > 0);
    });
    expect(seen.tipsId).toBe(metal.id);
  });

  it('2. undeclared MAC → Blocked, reaches nothing, and appears in the failures with its reason', async () => {
    const mac = randomMac();
    const m = await startMetal([mac]);
    const ip = await leased(m);
    const r = await rowInState(mac, 'blocked');
    expect(r.reason).toBe('unknown_mac');
    expect(await reachesExternal(m)).toBe(false);
    expect(await pings(m, EXTERNAL_IP)).toBe(false);
    expect(await pings(m, MASTER_IP)).toBe(false);
    expect(await pings(m, GW_LAN_IP)).toBe(false);
    const f = await until('failure record', async () => (await failuresFor(mac)).find((x) => x.reason === 'unknown_mac'));
    expect(f).toMatchObject({ mac, gatewayId, ip });
  });

  it('3. a MAC that is only in a non-default (Phase 2) Space → Blocked', async () => {
    const mac = randomMac();
    await declareMetal('e2e-three', [{ name: 'eth0', mac }], { defaultSpace: null, spaces: [phase2Space] });
    const m = await startMetal([mac]);
    await leased(m);
    const r = await rowInState(mac, 'blocked');
    expect(r.reason).toBe('no_default_space');
    expect(await reachesExternal(m)).toBe(false);
  });

  it('4. while Pending (master stopped) no packet passes; when the master is back the metal becomes Active', async () => {
    const mac = randomMac();
    await declareMetal('e2e-four', [{ name: 'eth0', mac }], { defaultSpace: phase1Space });
    await master.stop();
    try {
      const m = await startMetal([mac]);
      await leased(m);
      const r = await rowInState(mac, 'pending');
      expect(r.tipsId).toBeNull();
      expect(await reachesExternal(m, undefined, 1)).toBe(false);
      expect(await pings(m, EXTERNAL_IP)).toBe(false);
      expect(await pings(m, GW_LAN_IP)).toBe(false);
      // Past the pending timeout it is still Pending (never fails open) and still retrying.
      const late = await until('pending timeout flagged', async () => {
        const x = await row(mac);
        return x?.reason === 'pending_timeout' ? x : undefined;
      });
      expect(late.state).toBe('pending');
      expect(await reachesExternal(m, undefined, 1)).toBe(false);
      master = startMaster();
      await masterReady();
      await rowInState(mac, 'active', 30_000);
      expect(await until('curl after the master came back', async () => reachesExternal(m))).toBe(true);
    } finally {
      if (!master.running) {
        master = startMaster();
        await masterReady();
      }
    }
  }, 240_000);

  it('5. unblock by adding the MAC to the metal → the gateway clears the record → next renew → Active', async () => {
    const known = randomMac();
    const stranger = randomMac();
    const metal = await declareMetal('e2e-five', [{ name: 'eth0', mac: known }], { defaultSpace: phase1Space });
    const m = await startMetal([stranger]);
    await leased(m);
    await rowInState(stranger, 'blocked');
    expect(await reachesExternal(m)).toBe(false);
    // The owner declares the address (T10): TIPS-D releases its lock and tells the gateway to clear.
    await api('PATCH', `/api/v1/metals/${metal.id}`, {
      interfaces: [
        { name: 'eth0', mac: known, type: 'ethernet', pxe: true },
        { name: 'eth1', mac: stranger, type: 'ethernet', pxe: false },
      ],
    });
    await until('gateway cleared the record', async () => (await row(stranger))?.state !== 'blocked');
    // The metal restarts its interface's DHCP (udhcpc renew).
    m.dhcp[0]!.signal('SIGUSR1');
    const r = await rowInState(stranger, 'active', 30_000);
    expect(r.tipsId).toBe(metal.id);
    expect(await until('curl after unblock', async () => reachesExternal(m))).toBe(true);
  });

  it('6. one metal with two interfaces in different states at once', async () => {
    const good = randomMac();
    const bad = randomMac();
    // Only eth0's MAC is declared; eth1's MAC belongs to nobody.
    const metal = await declareMetal('e2e-six', [{ name: 'eth0', mac: good }], { defaultSpace: phase1Space });
    const m = await startMetal([good, bad]);
    await leased(m, 0);
    await leased(m, 1);
    expect((await rowInState(good, 'active')).tipsId).toBe(metal.id);
    await rowInState(bad, 'blocked');
    expect(await until('eth0 reaches out', async () => reachesExternal(m, 'eth0'))).toBe(true);
    expect(await reachesExternal(m, 'eth1')).toBe(false);
    expect(await pings(m, EXTERNAL_IP, 'eth1')).toBe(false);
  });

  it('7. the block-metal action cuts an Active metal within 5 s', async () => {
    const mac = randomMac();
    const metal = await declareMetal('e2e-seven', [{ name: 'eth0', mac }], { defaultSpace: phase1Space });
    const m = await startMetal([mac]);
    const ip = await leased(m);
    await rowInState(mac, 'active');
    expect(await until('active traffic', async () => reachesExternal(m))).toBe(true);
    // A long-lived flow that exists before the block.
    const ping = m.ns.spawn('busybox', ['ping', '-i', '0.2', EXTERNAL_IP], { label: 'ping' });
    await ping.waitFor(/seq=2 /);
    const t0 = Date.now();
    await api('POST', `/api/v1/metals/${metal.id}/block`, { reason: 'tamper detected' }, 202);
    await until('traffic cut', async () => !(await reachesExternal(m, undefined, 1)), 5_000, 100);
    const cutAfter = Date.now() - t0;
    expect(cutAfter).toBeLessThan(5_000);
    // The ping that was running sees no more replies either.
    const before = (ping.output.match(/seq=/g) ?? []).length;
    await new Promise((r) => setTimeout(r, 1500));
    expect((ping.output.match(/seq=/g) ?? []).length).toBe(before);
    // The kernel holds no tracked connection of that address any more (conntrack was flushed and
    // the pings since then were dropped before confirmation).
    const tracked = await gw.exec('conntrack', ['-L', '-s', ip]);
    expect(tracked.stderr).toMatch(/0 flow entries/);
    ping.signal('SIGKILL');
    expect((await row(mac))?.state).toBe('blocked');
  });

  it('8. kill -9 and restart → same leases, same table, same rules; decisions stay enforced meanwhile', async () => {
    const mac = randomMac();
    await declareMetal('e2e-eight', [{ name: 'eth0', mac }], { defaultSpace: phase1Space });
    const m = await startMetal([mac]);
    await leased(m);
    await rowInState(mac, 'active');
    expect(await until('active traffic', async () => reachesExternal(m))).toBe(true);
    // NAT samples and bookkeeping times move on their own; identity, state and decisions must not.
    const strip = (rows: (TableRow & { updatedAt?: number })[]) => rows.map(({ nat: _n, updatedAt: _u, ...r }) => r);
    const leasesBefore = await gatewayCli<{ leases: unknown[] }>('leases');
    const tableBefore = strip((await gatewayCli<{ rows: TableRow[] }>('table')).rows);
    const rulesBefore = (await gw.execOk('nft', ['list', 'table', 'inet', NFT_TABLE])).stdout;

    await gateway.kill9();
    // The kernel keeps the last rules: Active still works, the others stay contained.
    expect(await reachesExternal(m)).toBe(true);
    expect((await gw.execOk('nft', ['list', 'table', 'inet', NFT_TABLE])).stdout).toBe(rulesBefore);

    gateway = startGateway();
    await gateway.waitFor(/"msg":"ready"/, 30_000);
    expect(await gatewayCli<{ leases: unknown[] }>('leases')).toEqual(leasesBefore);
    const tableAfter = strip((await gatewayCli<{ rows: TableRow[] }>('table')).rows);
    expect(tableAfter).toEqual(tableBefore);
    expect((await gw.execOk('nft', ['list', 'table', 'inet', NFT_TABLE])).stdout).toBe(rulesBefore);
    // And the restarted daemon serves renewals with the same address.
    m.dhcp[0]!.signal('SIGUSR1');
    await until('renewal after restart', async () => /renew eth0 10\.77\.0\.\d+[^\n]*\n?$/.test(readFileSync(m.events, 'utf8')));
    expect(await reachesExternal(m)).toBe(true);
  });

  it('T5 PXE clients (option 60 PXEClient, option 93) get next-server, option 66 and the boot file of their architecture', async () => {
    const uefi = await startMetal([randomMac()], { udhcpcArgs: ['-V', 'PXEClient:Arch:00007:UNDI:003016', '-x', '0x5d:0007'] });
    const bios = await startMetal([randomMac()], { udhcpcArgs: ['-V', 'PXEClient:Arch:00000:UNDI:002001', '-x', '0x5d:0000'] });
    const plain = await startMetal([randomMac()]);
    await Promise.all([leased(uefi), leased(bios), leased(plain)]);
    // udhcpc prints "lease obtained" before its hook script has written the event: poll for the line.
    const bound = (m: Metal) => until('the hook recorded the bound event', async () => readFileSync(m.events, 'utf8').split('\n').find((l) => l.startsWith('bound ')));
    expect(await bound(uefi)).toContain(`siaddr=${GW_LAN_IP} tftp=${GW_LAN_IP} bootfile=http://${GW_LAN_IP}:8080/ipxe.efi`);
    expect(await bound(bios)).toContain(`siaddr=${GW_LAN_IP} tftp=${GW_LAN_IP} bootfile=undionly.kpxe boot_file=undionly.kpxe`);
    expect(await bound(plain)).toMatch(/tftp= bootfile= boot_file=$/);
  });

  it('T5 RELEASE from udhcpc frees the lease and withdraws the address from the table', async () => {
    const mac = randomMac();
    await declareMetal('e2e-release', [{ name: 'eth0', mac }], { defaultSpace: phase1Space });
    const m = await startMetal([mac], { udhcpcArgs: ['-R'] });
    const ip = await leased(m);
    await rowInState(mac, 'active');
    await until('address granted in the rules', async () =>
      (await gw.execOk('nft', ['list', 'set', 'inet', NFT_TABLE, 'active'])).stdout.includes(`${mac} . ${ip}`),
    );
    m.dhcp[0]!.signal('SIGUSR2');
    await until('lease released', async () => {
      const l = await gatewayCli<{ leases: { ip: string; mac: string; state: string }[] }>('leases');
      return l.leases.find((x) => x.ip === ip && x.mac === mac && x.state === 'released');
    });
    expect(await row(mac)).toMatchObject({ state: 'active', ip: null });
    const rules = (await gw.execOk('nft', ['list', 'set', 'inet', NFT_TABLE, 'active'])).stdout;
    expect(rules).not.toContain(mac);
  });

  it('T5 malformed DHCP on the LAN is dropped and counted; the daemon keeps serving', async () => {
    // A host without a lease (no row: DHCP is all it may send) sends garbage from port 68 to port 67.
    const m = await startMetal([randomMac()], { dhcp: false });
    await m.ns.addAddress('eth0', '10.77.0.250/24');
    const send = `const s=require('node:dgram').createSocket('udp4');s.bind(68,()=>s.send(Buffer.from('not-a-dhcp-packet'),67,'${GW_LAN_IP}',()=>s.close()))`;
    await m.ns.execOk('node', ['-e', send]);
    const metrics = await until('malformed counter', async () => {
      const r = await gw.exec('curl', ['-s', 'http://127.0.0.1:9467/metrics']);
      return /tips_gateway_dhcp_malformed_total\{code="too_short"\} [1-9]/.test(r.stdout) ? r.stdout : undefined;
    });
    expect(metrics).toContain('tips_gateway_dhcp_received_total');
    expect(gateway.running).toBe(true);
    // Still serving: a new metal gets a lease.
    const next = await startMetal([randomMac()]);
    expect(await leased(next)).toMatch(/^10\.77\.0\./);
  });
});
