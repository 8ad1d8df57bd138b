// The rule set as the kernel runs it: NftEnforcer (real nft, real conntrack) loads it into a
// throw-away gateway namespace, metal namespaces on its LAN bridge send real packets, and the tests
// assert what got through. Needs root (ip netns), like the e2e suites.
import { spawn } from 'node:child_process';
import { type Namespace, Topology } from '@tips/testbed';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BOOT_PORTS, EnforcerError } from './enforcer.ts';
import { NftEnforcer, type RuleConfig, runCommand } from './nft.ts';
import { httpFrom, pingFrom, startServices, TFTP_FILE_BYTES, tftpFrom, udpFrom } from './testing.ts';
import { interfaceRow } from './rows.fixture.ts';

const LAN_IP = '10.77.0.1';
// IPv6 on the LAN too (static neighbours, since the rules drop ICMPv6): IPv6 must reach nothing.
const LAN_IP6 = 'fd77::1';
const BRIDGE_MAC = '02:00:00:00:0b:01';
const UPLINK_IP = '10.99.0.2';
const CLOUD_IP = '10.99.0.1';
const BOOT_HTTP = BOOT_PORTS.httpTcp;
const OTHER_PORT = 8081;
const TABLE = 'tips_nt';
const CFG: RuleConfig = { table: TABLE, lan: ['br0'], lanAddress: LAN_IP, uplink: 'up0', bootUdpPorts: [BOOT_PORTS.tftpUdp], bootTcpPorts: [BOOT_HTTP] };

const METALS = {
  active: { mac: '02:00:00:00:0a:01', ip: '10.77.0.100', spoofed: '10.77.0.110' },
  pending: { mac: '02:00:00:00:0a:02', ip: '10.77.0.101' },
  blocked: { mac: '02:00:00:00:0a:03', ip: '10.77.0.102' },
  unknown: { mac: '02:00:00:00:0a:04', ip: '10.77.0.103' },
} as const;
type Who = keyof typeof METALS;

const row = interfaceRow;

const START = [row(METALS.active.mac, 'active', METALS.active.ip), row(METALS.pending.mac, 'pending', METALS.pending.ip), row(METALS.blocked.mac, 'blocked', METALS.blocked.ip)];

let topo: Topology;
let gw: Namespace;
let cloud: Namespace;
const ns = {} as Record<Who, Namespace>;
let enforcer: NftEnforcer;

/** The real runner, entering the gateway namespace. */
const inGateway = (cmd: string, args: string[], stdin?: string) => runCommand('ip', ['netns', 'exec', gw.name, cmd, ...args], stdin);

/** Runs named probes; those in one group run one after another (they share DHCP client port 68). */
async function probe(groups: Record<string, Record<string, () => Promise<unknown>>>): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  await Promise.all(
    Object.entries(groups).map(async ([group, probes]) => {
      const serial = group.endsWith(':serial');
      const run = async ([name, f]: [string, () => Promise<unknown>]) => {
        out[name] = await f();
      };
      if (serial) for (const p of Object.entries(probes)) await run(p);
      else await Promise.all(Object.entries(probes).map(run));
    }),
  );
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

const dhcp = (who: Namespace, host: string, fromPort = 68) => udpFrom(who, host, 67, { fromPort });

async function listSet(name: string): Promise<string[]> {
  const r = await gw.execOk('nft', ['-j', 'list', 'set', 'inet', TABLE, name]);
  const set = (JSON.parse(r.stdout) as { nftables: { set?: { elem?: unknown[] } }[] }).nftables.find((x) => x.set)!.set!;
  return (set.elem ?? []).map((e) => (typeof e === 'string' ? e : (e as { concat: string[] }).concat.join(' . ')));
}

describe('T7 T8 T11 the loaded rule set contains Pending and Blocked metals (real nft and traffic in namespaces)', () => {
  beforeAll(async () => {
    topo = await Topology.create('nft');
    gw = await topo.namespace('gw');
    cloud = await topo.namespace('cloud');
    await topo.veth(cloud, 'eth0', gw, 'up0');
    await cloud.addAddress('eth0', `${CLOUD_IP}/24`);
    await gw.addAddress('up0', `${UPLINK_IP}/24`);
    await gw.defaultRoute(CLOUD_IP);
    // The cloud can route to the LAN: only the rules (not a missing route) keep new flows out, and
    // the address it sees shows whether NAT happened.
    await cloud.ip('route', 'add', '10.77.0.0/24', 'via', UPLINK_IP);
    await gw.bridge('br0');
    await gw.ip('link', 'set', 'br0', 'address', BRIDGE_MAC);
    await gw.addAddress('br0', `${LAN_IP}/24`);
    await gw.ip('addr', 'add', `${LAN_IP6}/64`, 'dev', 'br0', 'nodad');
    await gw.sysctl('net.ipv4.ip_forward', '1');
    for (const [who, m] of Object.entries(METALS) as [Who, (typeof METALS)[Who]][]) {
      ns[who] = await topo.namespace(who);
      await topo.veth(ns[who], 'eth0', gw, `p${who}`.slice(0, 15), { aMac: m.mac });
      await gw.enslave(`p${who}`.slice(0, 15), 'br0');
      await ns[who].addAddress('eth0', `${m.ip}/24`);
      await ns[who].defaultRoute(LAN_IP);
      const ip6 = `fd77::${m.ip.split('.')[3]}`;
      await ns[who].ip('addr', 'add', `${ip6}/64`, 'dev', 'eth0', 'nodad');
      await ns[who].ip('-6', 'neigh', 'replace', LAN_IP6, 'lladdr', BRIDGE_MAC, 'dev', 'eth0', 'nud', 'permanent');
      await gw.ip('-6', 'neigh', 'replace', ip6, 'lladdr', m.mac, 'dev', 'br0', 'nud', 'permanent');
    }
    await ns.active.addAddress('eth0', `${METALS.active.spoofed}/24`);
    await Promise.all([
      startServices(gw, [
        `http:${LAN_IP}:${BOOT_HTTP}`,
        `http:${LAN_IP6}:${BOOT_HTTP}`,
        `http:${LAN_IP}:${OTHER_PORT}`,
        `http:${UPLINK_IP}:${BOOT_HTTP}`,
        `tftp:${LAN_IP}:${BOOT_PORTS.tftpUdp}`,
        `tftp:${UPLINK_IP}:${BOOT_PORTS.tftpUdp}`,
        'udp:0.0.0.0:67',
        `udp:${LAN_IP}:67`,
        `udp:${UPLINK_IP}:67`,
      ]),
      startServices(cloud, [`http:${CLOUD_IP}:80`]),
      startServices(ns.active, [`http:${METALS.active.ip}:8000`]),
    ]);
    enforcer = new NftEnforcer(CFG, inGateway);
  }, 120_000);

  // Loaded inside each test, not once: mutation testing swaps the code under test per test.
  beforeEach(async () => {
    await enforcer.apply(START);
  });

  afterAll(async () => {
    await topo?.destroy();
  });

  it('Pending reaches only DHCP and the boot services, at the LAN address; Blocked reaches nothing; unknown sources only DHCP', async () => {
    const { pending: p, blocked: b, unknown: u } = ns;
    const r = await probe({
      pending: {
        'pending → LAN boot HTTP': () => httpFrom(p, LAN_IP, BOOT_HTTP),
        'pending → LAN other port': () => httpFrom(p, LAN_IP, OTHER_PORT),
        'pending → uplink address, boot port': () => httpFrom(p, UPLINK_IP, BOOT_HTTP),
        'pending → LAN IPv6 boot HTTP': () => httpFrom(p, LAN_IP6, BOOT_HTTP),
        'pending → LAN TFTP (bytes)': () => tftpFrom(p, LAN_IP),
        'pending → uplink TFTP (bytes)': () => tftpFrom(p, UPLINK_IP),
        'pending → cloud': () => httpFrom(p, CLOUD_IP, 80),
        'pending pings the gateway': () => pingFrom(p, LAN_IP),
      },
      'pending:serial': {
        'pending DHCP broadcast': () => dhcp(p, '255.255.255.255'),
        'pending DHCP → LAN': () => dhcp(p, LAN_IP),
        'pending DHCP → uplink address': () => dhcp(p, UPLINK_IP),
        'pending udp 67 not from 68': () => dhcp(p, LAN_IP, 6800),
      },
      blocked: {
        'blocked → LAN boot HTTP': () => httpFrom(b, LAN_IP, BOOT_HTTP),
        'blocked → LAN other port': () => httpFrom(b, LAN_IP, OTHER_PORT),
        'blocked → uplink address, boot port': () => httpFrom(b, UPLINK_IP, BOOT_HTTP),
        'blocked → LAN TFTP (bytes)': () => tftpFrom(b, LAN_IP),
        'blocked → cloud': () => httpFrom(b, CLOUD_IP, 80),
        'blocked pings the gateway': () => pingFrom(b, LAN_IP),
      },
      'blocked:serial': {
        'blocked DHCP broadcast': () => dhcp(b, '255.255.255.255'),
        'blocked DHCP → LAN': () => dhcp(b, LAN_IP),
      },
      unknown: {
        'unknown → LAN boot HTTP': () => httpFrom(u, LAN_IP, BOOT_HTTP),
        'unknown → LAN TFTP (bytes)': () => tftpFrom(u, LAN_IP),
        'unknown → cloud': () => httpFrom(u, CLOUD_IP, 80),
      },
      'unknown:serial': {
        'unknown DHCP broadcast': () => dhcp(u, '255.255.255.255'),
        'unknown DHCP → uplink address': () => dhcp(u, UPLINK_IP),
      },
    });
    expect(r).toEqual({
      'pending → LAN boot HTTP': `${LAN_IP}:${BOOT_HTTP} from ${METALS.pending.ip}`,
      'pending → LAN other port': null,
      'pending → uplink address, boot port': null,
      'pending → LAN IPv6 boot HTTP': null,
      'pending → LAN TFTP (bytes)': TFTP_FILE_BYTES,
      'pending → uplink TFTP (bytes)': null,
      'pending → cloud': null,
      'pending pings the gateway': false,
      'pending DHCP broadcast': `0.0.0.0:67 from ${METALS.pending.ip}`,
      'pending DHCP → LAN': `${LAN_IP}:67 from ${METALS.pending.ip}`,
      'pending DHCP → uplink address': null,
      'pending udp 67 not from 68': null,
      'blocked → LAN boot HTTP': null,
      'blocked → LAN other port': null,
      'blocked → uplink address, boot port': null,
      'blocked → LAN TFTP (bytes)': null,
      'blocked → cloud': null,
      'blocked pings the gateway': false,
      'blocked DHCP broadcast': null,
      'blocked DHCP → LAN': null,
      'unknown → LAN boot HTTP': null,
      'unknown → LAN TFTP (bytes)': null,
      'unknown → cloud': null,
      'unknown DHCP broadcast': `0.0.0.0:67 from ${METALS.unknown.ip}`,
      'unknown DHCP → uplink address': null,
    });
  });

  it('Active leaves through the uplink masqueraded, only from its own (interface, MAC, address); nothing new comes in; the uplink side is not filtered but for DHCP', async () => {
    const a = ns.active;
    const r = await probe({
      active: {
        'active → cloud': () => httpFrom(a, CLOUD_IP, 80),
        'active from another address → cloud': () => httpFrom(a, CLOUD_IP, 80, { from: METALS.active.spoofed }),
        'active → LAN boot HTTP': () => httpFrom(a, LAN_IP, BOOT_HTTP),
        'active → LAN other port': () => httpFrom(a, LAN_IP, OTHER_PORT),
        'active → uplink address, boot port': () => httpFrom(a, UPLINK_IP, BOOT_HTTP),
        'active → LAN IPv6 boot HTTP': () => httpFrom(a, LAN_IP6, BOOT_HTTP),
        'active → LAN TFTP (bytes)': () => tftpFrom(a, LAN_IP),
        'active pings the gateway': () => pingFrom(a, LAN_IP),
        'active pings the cloud': () => pingFrom(a, CLOUD_IP),
      },
      'active:serial': {
        'active DHCP → LAN': () => dhcp(a, LAN_IP),
      },
      cloud: {
        'cloud → uplink address': () => httpFrom(cloud, UPLINK_IP, BOOT_HTTP),
        'cloud → active metal (new flow)': () => httpFrom(cloud, METALS.active.ip, 8000),
      },
      'cloud:serial': {
        'cloud DHCP → uplink address': () => dhcp(cloud, UPLINK_IP),
      },
    });
    expect(r).toEqual({
      'active → cloud': `${CLOUD_IP}:80 from ${UPLINK_IP}`,
      'active from another address → cloud': null,
      'active → LAN boot HTTP': `${LAN_IP}:${BOOT_HTTP} from ${METALS.active.ip}`,
      'active → LAN other port': null,
      'active → uplink address, boot port': null,
      'active → LAN IPv6 boot HTTP': null,
      'active → LAN TFTP (bytes)': TFTP_FILE_BYTES,
      'active pings the gateway': true,
      'active pings the cloud': true,
      'active DHCP → LAN': `${LAN_IP}:67 from ${METALS.active.ip}`,
      'cloud → uplink address': `${UPLINK_IP}:${BOOT_HTTP} from ${CLOUD_IP}`,
      'cloud → active metal (new flow)': null,
      'cloud DHCP → uplink address': null,
    });
  });

  it('a new apply replaces the policy at once (sets as listed by nft, traffic); conntrack of an address is sampled and flushed', async () => {
    // Pending becomes Active, Active becomes Blocked.
    await enforcer.apply([row(METALS.pending.mac, 'active', METALS.pending.ip), row(METALS.active.mac, 'blocked', METALS.active.ip)]);
    expect(await listSet('active')).toEqual([`br0 . ${METALS.pending.mac} . ${METALS.pending.ip}`]);
    expect(await listSet('active_ip')).toEqual([METALS.pending.ip]);
    expect(await listSet('pending')).toEqual([]);
    expect(await listSet('blocked')).toEqual([`br0 . ${METALS.active.mac}`]);
    const r = await probe({
      now: {
        'former pending → cloud': () => httpFrom(ns.pending, CLOUD_IP, 80),
        'former active → cloud': () => httpFrom(ns.active, CLOUD_IP, 80),
        'former active → LAN boot HTTP': () => httpFrom(ns.active, LAN_IP, BOOT_HTTP),
      },
    });
    expect(r).toEqual({
      'former active → LAN boot HTTP': null,
      'former active → cloud': null,
      'former pending → cloud': `${CLOUD_IP}:80 from ${UPLINK_IP}`,
    });
    // A flow the kernel tracks, then flushed by address.
    const keep = ns.pending.spawn('curl', ['-s', '--limit-rate', '1', '-o', '/dev/null', `http://${CLOUD_IP}:80/`]);
    let sample = '';
    for (let i = 0; i < 50 && !sample.includes(`src=${METALS.pending.ip}`); i++) {
      await new Promise((res) => setTimeout(res, 100));
      sample = await enforcer.sampleConnections();
    }
    expect(sample).toMatch(new RegExp(`src=${METALS.pending.ip.replace(/\./g, '\\.')} dst=${CLOUD_IP.replace(/\./g, '\\.')} .*dport=80`));
    await keep.kill9();
    await enforcer.flushConnections(METALS.pending.ip);
    expect(await enforcer.sampleConnections()).not.toContain(`=${METALS.pending.ip} `);
    // Nothing left to delete is not an error.
    await enforcer.flushConnections(METALS.pending.ip);
  });

  it('T2 element changes through an nft -i session admit and block exactly as a whole render does (traffic)', async () => {
    const session = new NftEnforcer(CFG, inGateway, { interactive: (args) => spawn('ip', ['netns', 'exec', gw.name, 'nft', ...args]) });
    await session.apply(START);
    // Pending becomes Active, Active becomes Blocked: one interface per change.
    await session.change([{ mac: METALS.pending.mac, gatewayInterface: 'br0', row: row(METALS.pending.mac, 'active', METALS.pending.ip) }]);
    await session.change([{ mac: METALS.active.mac, gatewayInterface: 'br0', row: row(METALS.active.mac, 'blocked', METALS.active.ip) }]);
    expect(await listSet('active')).toEqual([`br0 . ${METALS.pending.mac} . ${METALS.pending.ip}`]);
    expect(await listSet('active_ip')).toEqual([METALS.pending.ip]);
    expect(await listSet('pending')).toEqual([]);
    expect((await listSet('blocked')).sort()).toEqual([`br0 . ${METALS.active.mac}`, `br0 . ${METALS.blocked.mac}`].sort());
    const r = await probe({
      now: {
        'former pending → cloud': () => httpFrom(ns.pending, CLOUD_IP, 80),
        'former active → cloud': () => httpFrom(ns.active, CLOUD_IP, 80),
        'former active → LAN boot HTTP': () => httpFrom(ns.active, LAN_IP, BOOT_HTTP),
        'blocked → cloud': () => httpFrom(ns.blocked, CLOUD_IP, 80),
      },
    });
    expect(r).toEqual({
      'blocked → cloud': null,
      'former active → LAN boot HTTP': null,
      'former active → cloud': null,
      'former pending → cloud': `${CLOUD_IP}:80 from ${UPLINK_IP}`,
    });
    session.close();
  });

  it('a rule set the kernel refuses leaves the previous one in force, unchanged', async () => {
    const before = (await gw.execOk('nft', ['list', 'table', 'inet', TABLE])).stdout;
    // Passes the renderer's shape check, but no address has an octet of 999: nft refuses the script.
    const broken = new NftEnforcer({ ...CFG, lanAddress: '999.0.0.1' }, inGateway);
    const err = await broken.apply([row(METALS.blocked.mac, 'active', METALS.blocked.ip)]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EnforcerError);
    expect(err).toMatchObject({ code: 'apply_failed', message: expect.stringMatching(/^nft -f failed \(exit 1\): .*999\.0\.0\.1/s) });
    expect((await gw.execOk('nft', ['list', 'table', 'inet', TABLE])).stdout).toBe(before);
    expect(await httpFrom(ns.blocked, CLOUD_IP, 80)).toBeNull();
  });
});
