/**
 * `npm start`: the main job on embedded defaults — a master (SQLite + files under ./.data), and,
 * when this machine can build network namespaces (Linux, root), a real gateway in its own
 * namespace with a demo fleet of three metals running busybox udhcpc: two declared by the demo
 * owner (they become Active), one intruder (it stays Blocked and shows up in the failures).
 * Ctrl-C stops everything and removes the namespaces; the data in ./.data stays.
 *
 *   npm start                 # master + gateway + demo fleet
 *   npm start -- --no-fleet   # master only
 *   npm start -- --port 9090  # other flags go to tips-master
 *
 * TIPS_DEMO_DATA moves ./.data elsewhere.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server, connect } from 'node:net';
import { join, resolve } from 'node:path';
import { type Namespace, type NsProcess, Topology } from '@tips/testbed';
import { DEBIAN_PACKAGES } from './debian.mjs';

const ROOT = resolve(import.meta.dirname, '..');
const DATA = resolve(process.env.TIPS_DEMO_DATA ?? join(ROOT, '.data'));
const MASTER_BIN = join(ROOT, 'apps/master/bin/tips-master.js');
const GATEWAY_BIN = join(ROOT, 'apps/gateway/bin/tips-gateway.js');
const FLEET = [
  { name: 'demo-pi-1', mac: '02:de:00:00:00:01', declared: true },
  { name: 'demo-pi-2', mac: '02:de:00:00:00:02', declared: true },
  { name: 'intruder', mac: '02:de:00:00:00:66', declared: false },
];
const UDHCPC_SCRIPT = `#!/bin/sh
case "$1" in
  deconfig) ip -4 addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew) ip -4 addr replace "$ip/\${mask:-24}" dev "$interface"
    for r in $router; do ip route replace default via "$r" dev "$interface"; break; done ;;
esac
exit 0
`;

const argv = process.argv.slice(2);
const wantFleet = !argv.includes('--no-fleet');
const masterArgs = argv.filter((a) => a !== '--no-fleet');
const portArg = masterArgs.indexOf('--port');
const port = portArg >= 0 ? Number(masterArgs[portArg + 1]) : Number(process.env.TIPS_PORT ?? 8080);
const say = (s: string) => process.stdout.write(`${s}\n`);

function fleetBlocker(): string | undefined {
  if (process.platform !== 'linux') return 'the demo fleet needs Linux network namespaces';
  if (process.getuid?.() !== 0) return 'the demo fleet needs root (network namespaces, nftables, DHCP on port 67)';
  const need = DEBIAN_PACKAGES.filter((p) => ['udhcpc', 'busybox', 'nft', 'conntrack', 'ip'].includes(p.check));
  const missing = need.filter((p) => spawnSync('sh', ['-c', `command -v ${p.check}`]).status !== 0).map((p) => p.pkg);
  if (missing.length > 0) {
    say(`Installing what the demo fleet needs: ${missing.join(' ')}`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    if (spawnSync('apt-get', ['install', '-y', '-qq', ...missing], { stdio: 'inherit', env }).status !== 0) {
      return `could not install ${missing.join(' ')}`;
    }
  }
  if (spawnSync('ip', ['netns', 'list']).status !== 0) return '`ip netns` does not work here';
  return undefined;
}

async function startMaster(): Promise<{ proc: ChildProcess; url: string; adminToken?: string }> {
  // CoAP over DTLS for constrained metals (issue 12) on its IANA port 5684 — any free one with --port 0
  // (tests, several demos on one machine) — unless the flags say otherwise.
  const coap = masterArgs.includes('--coap-port') ? [] : ['--coap-port', port === 0 ? '0' : '5684'];
  const args = [MASTER_BIN, ...(masterArgs.includes('--data-dir') ? [] : ['--data-dir', join(DATA, 'master')]), ...coap, ...masterArgs];
  if (portArg < 0) args.push('--port', String(port));
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { TIPS_LOG_LEVEL: 'warn', ...process.env } });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => {
    out += d;
    process.stdout.write(d);
  });
  const url = await new Promise<string>((ok, fail) => {
    const t = setInterval(() => {
      const m = /listening on (http\S+)/.exec(out);
      if (m && /^TIPS master ready$/m.test(out)) {
        clearInterval(t);
        ok(m[1]!);
      } else if (proc.exitCode !== null) {
        clearInterval(t);
        fail(new Error(`tips-master exited with ${proc.exitCode}`));
      }
    }, 50);
  });
  return { proc, url, adminToken: /^\s+(tips_[A-Za-z0-9_-]+)$/m.exec(out)?.[1] };
}

/** The demo owner's token: made once from the admin token the first start prints, kept in .data (0600). */
function demoToken(adminToken: string | undefined): string | undefined {
  const file = join(DATA, 'demo-token');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  if (!adminToken) return undefined;
  mkdirSync(DATA, { recursive: true });
  writeFileSync(file, `${adminToken}\n`, { mode: 0o600 });
  return adminToken;
}

async function api(url: string, token: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const r = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  return { status: r.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** Declares the demo fleet (idempotent: what exists is left alone). */
async function declareFleet(url: string, token: string): Promise<void> {
  await api(url, token, 'POST', '/api/v1/spaces', { name: 'demo-base', phase: 1 });
  for (const m of FLEET.filter((f) => f.declared)) {
    await api(url, token, 'POST', '/api/v1/metals', { name: m.name, interfaces: [{ name: 'eth0', mac: m.mac, type: 'ethernet', pxe: true }] });
    await api(url, token, 'POST', '/api/v1/spaces/demo-base/members', { metal: m.name, interfaces: ['eth0'], default: true });
  }
}

/** Forwards hostIp:port (reachable from the gateway namespace) to the master on loopback. */
function forward(hostIp: string, masterUrl: string): Promise<Server> {
  const target = new URL(masterUrl);
  const server = createServer((c) => {
    const up = connect(Number(target.port), target.hostname);
    c.pipe(up).pipe(c);
    const end = () => {
      c.destroy();
      up.destroy();
    };
    c.on('error', end);
    up.on('error', end);
  });
  return new Promise((ok) => server.listen(Number(target.port), hostIp, () => ok(server)));
}

async function startFleet(masterUrl: string, token: string): Promise<{ topo: Topology; gw: Namespace; gwData: string; forwarder: Server }> {
  const gwData = join(DATA, 'gateway');
  mkdirSync(gwData, { recursive: true, mode: 0o700 });
  writeFileSync(join(DATA, 'udhcpc.sh'), UDHCPC_SCRIPT);
  chmodSync(join(DATA, 'udhcpc.sh'), 0o755);
  const topo = await Topology.create('demo');
  try {
    const gw = await topo.namespace('gw');
    const link = await topo.hostLink(gw, 'up0');
    await gw.defaultRoute(link.hostIp);
    await gw.bridge('br0');
    await gw.addAddress('br0', '10.77.0.1/24');
    await gw.sysctl('net.ipv4.ip_forward', '1');
    const forwarder = await forward(link.hostIp, masterUrl);
    const gwMaster = `http://${link.hostIp}:${new URL(masterUrl).port}`;

    if (!existsSync(join(gwData, 'gateway.json'))) {
      const created = await api(masterUrl, token, 'POST', '/api/v1/gateways', { name: 'demo-gw' });
      if (created.status !== 201) throw new Error(`cannot add the demo gateway: ${JSON.stringify(created.json)}`);
      await gw.execOk('node', [GATEWAY_BIN, 'enroll', '--master', gwMaster, '--token', String(created.json.enrollmentToken), '--data-dir', gwData, '--name', 'demo-gw']);
    }
    const gateway: NsProcess = gw.spawn(
      'node',
      [GATEWAY_BIN, 'run', '--lan', 'br0', '--uplink', 'up0', '--pool', '10.77.0.100-10.77.0.200', '--data-dir', gwData, '--master', gwMaster, '--log-level', 'warn'],
      { logFile: join(DATA, 'gateway.log'), label: 'tips-gateway' },
    );
    topo.track(gateway);
    for (const [i, m] of FLEET.entries()) {
      const ns = await topo.namespace(`metal${i + 1}`);
      await topo.veth(ns, 'eth0', gw, `m${i + 1}`, { aMac: m.mac });
      await gw.enslave(`m${i + 1}`, 'br0');
      topo.track(ns.spawn('udhcpc', ['-f', '-i', 'eth0', '-s', join(DATA, 'udhcpc.sh'), '-t', '0', '-T', '2', '-A', '3', '-x', `hostname:${m.name}`], { label: `udhcpc ${m.name}` }));
    }
    return { topo, gw, gwData, forwarder };
  } catch (err) {
    await topo.destroy();
    throw err;
  }
}

const master = await startMaster();
let fleet: Awaited<ReturnType<typeof startFleet>> | undefined;
let stopping: Promise<void> | undefined;
/** Every path out (Ctrl-C, SIGTERM, the master dying) waits for the same clean-up. */
async function stop(code = 0): Promise<never> {
  stopping ??= (async () => {
    fleet?.forwarder.close();
    await fleet?.topo.destroy().catch(() => undefined);
    master.proc.kill('SIGTERM');
  })();
  await stopping;
  process.exit(code);
}
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));
master.proc.on('exit', (code) => void stop(code ?? 1));

if (wantFleet) {
  const blocker = fleetBlocker();
  const token = demoToken(master.adminToken);
  if (blocker) say(`\nNo demo fleet: ${blocker}. The master runs alone (npm start -- --no-fleet skips this check).`);
  else if (!token) say(`\nNo demo fleet: this data dir was initialised without it (remove ${DATA} to start over).`);
  else {
    try {
      await declareFleet(master.url, token);
      fleet = await startFleet(master.url, token);
      const table = `ip netns exec ${fleet.gw.name} node apps/gateway/bin/tips-gateway.js table --data-dir ${fleet.gwData}`;
      say(`\nDemo fleet: gateway namespace ${fleet.gw.name}, LAN 10.77.0.0/24, metals ${FLEET.map((f) => `${f.name} (${f.mac}${f.declared ? '' : ', undeclared'})`).join(', ')}.`);
      say(`  the gateway's interface table:   ${table}`);
      say('  failed registrations:            npx tips discovery failures');
      say(`  log in first with the token in  ${join(DATA, 'demo-token')}`);
      setTimeout(() => {
        const r = spawnSync('ip', ['netns', 'exec', fleet!.gw.name, 'node', GATEWAY_BIN, 'table', '--data-dir', fleet!.gwData], { encoding: 'utf8' });
        say(`\n${r.stdout}`);
      }, 8000).unref();
    } catch (err) {
      say(`\nDemo fleet failed to start: ${(err as Error).message}\nThe master keeps running.`);
    }
  }
}
