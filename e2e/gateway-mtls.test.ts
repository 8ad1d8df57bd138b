// TIPS gateway ↔ master over mTLS only, end to end (S6 S11 T11): the real master with
// --gateway-require-tls, the real tips-gateway enrolled against its https:// port with the TIPS
// root, then registration and the command channel over mTLS across ip netns; plain HTTP refused.
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type Namespace, type NsProcess, Topology, until } from '@tips/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');
const MASTER_BIN = join(ROOT, 'apps/master/bin/tips-master.js');
const GATEWAY_BIN = join(ROOT, 'apps/gateway/bin/tips-gateway.js');
const ADMIN_TOKEN = `tips_${randomBytes(24).toString('base64url')}`;
const MASTER_IP = '10.98.0.1';
const HTTP_PORT = 8080;
const TLS_PORT = 8443;
const GW_UPLINK_IP = '10.98.0.2';
const GW_LAN_IP = '10.76.0.1';
const NFT_TABLE = 'tips_gm';

const UDHCPC_SCRIPT = `#!/bin/sh
case "$1" in
  deconfig) ip -4 addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew) ip -4 addr replace "$ip/\${mask:-24}" dev "$interface" ;;
esac
exit 0
`;

let topo: Topology;
let cloud: Namespace;
let gw: Namespace;
let work: string;
let gwData: string;
let ownerUrl: string;
let master: NsProcess;
let gateway: NsProcess;
let gatewayId: string;

async function api<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${ownerUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status >= 400) throw new Error(`${method} ${path} → ${res.status} ${text}`);
  return (text ? JSON.parse(text) : {}) as T;
}

async function tableRow(mac: string): Promise<{ state: string; tipsId: string | null } | undefined> {
  const r = await gw.execOk('node', [GATEWAY_BIN, 'table', '--data-dir', gwData, '--json']);
  return (JSON.parse(r.stdout) as { rows: { mac: string; state: string; tipsId: string | null }[] }).rows.find((x) => x.mac === mac);
}

const enrollArgs = (master: string, token: string, dataDir: string, ca?: string) => [
  GATEWAY_BIN,
  'enroll',
  '--master',
  master,
  '--token',
  token,
  '--data-dir',
  dataDir,
  ...(ca ? ['--ca', ca] : []),
  '--json',
];

describe('S6 S11 T11 the gateway speaks to the master over mTLS only (--gateway-require-tls, netns, real master and gateway)', () => {
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'tgm-e2e-'));
    gwData = join(work, 'gateway');
    writeFileSync(join(work, 'udhcpc.sh'), UDHCPC_SCRIPT);
    chmodSync(join(work, 'udhcpc.sh'), 0o755);
    topo = await Topology.create('gm');
    cloud = await topo.namespace('cloud');
    gw = await topo.namespace('gw');
    await topo.veth(cloud, 'eth0', gw, 'up0');
    await cloud.addAddress('eth0', `${MASTER_IP}/24`);
    await gw.addAddress('up0', `${GW_UPLINK_IP}/24`);
    await gw.defaultRoute(MASTER_IP);
    await gw.bridge('br0');
    await gw.addAddress('br0', `${GW_LAN_IP}/24`);
    await gw.sysctl('net.ipv4.ip_forward', '1');
    const link = await topo.hostLink(cloud, 'h0');
    ownerUrl = `http://${link.nsIp}:${HTTP_PORT}`;
    master = cloud.spawn(
      'node',
      [MASTER_BIN, '--host', '0.0.0.0', '--port', String(HTTP_PORT), '--tls-port', String(TLS_PORT), '--tls-hostname', MASTER_IP, '--gateway-require-tls', '--data-dir', join(work, 'master')],
      { env: { ...process.env, TIPS_BOOTSTRAP_ADMIN_TOKEN: ADMIN_TOKEN, TIPS_LOG_LEVEL: 'warn' }, logFile: join(work, 'master.log'), label: 'tips-master' },
    );
    await master.waitFor(/TIPS master ready/, 90_000);

    // The operator fetches the TIPS root over the owner API and hands it to the gateway.
    const ca = await api<{ rootPem: string }>('GET', '/api/v1/enrollment/ca');
    writeFileSync(join(work, 'root.pem'), ca.rootPem);
    const created = await api<{ gateway: { id: string }; enrollmentToken: string }>('POST', '/api/v1/gateways', { name: 'gw-tls' });
    // Plain HTTP is refused even for enrollment, and the token is not spent by the refusal.
    const plain = await gw.exec('node', enrollArgs(`http://${MASTER_IP}:${HTTP_PORT}`, created.enrollmentToken, join(work, 'plain')));
    expect(plain.code).not.toBe(0);
    expect(plain.stderr).toContain('gateway_auth_failed');
    const enrolled = await gw.execOk('node', enrollArgs(`https://${MASTER_IP}:${TLS_PORT}`, created.enrollmentToken, gwData, join(work, 'root.pem')));
    gatewayId = JSON.parse(enrolled.stdout).gatewayId;
    expect(gatewayId).toBe(created.gateway.id);

    gateway = gw.spawn(
      'node',
      [
        GATEWAY_BIN,
        'run',
        '--lan',
        'br0',
        '--uplink',
        'up0',
        '--pool',
        '10.76.0.100-10.76.0.150',
        '--data-dir',
        gwData,
        '--dns',
        GW_LAN_IP,
        '--retry-initial',
        '200ms',
        '--retry-max',
        '1s',
        '--nft-table',
        NFT_TABLE,
        '--status-port',
        '9468',
      ],
      { logFile: join(work, 'gateway.log'), label: 'tips-gateway' },
    );
    await gateway.waitFor(/"msg":"ready"/, 30_000);
  });

  afterAll(async () => {
    await topo?.destroy();
    if (work && !process.env.TGW_KEEP) rmSync(work, { recursive: true, force: true });
  });

  it('enroll stored gateway.crt and ca.pem beside gateway.key; the certificate names the gateway', async () => {
    expect(statSync(join(gwData, 'gateway.key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(gwData, 'gateway.crt')).mode & 0o777).toBe(0o644);
    const text = (await gw.execOk('openssl', ['x509', '-in', join(gwData, 'gateway.crt'), '-noout', '-text'])).stdout;
    expect(text).toContain(`URI:urn:tips:gateway:${gatewayId}`);
    expect(text).toContain('TLS Web Client Authentication');
    expect(text).toContain('ED25519');
    // openssl, not our code, verifies the chain the gateway stored.
    const verify = await gw.exec('openssl', ['verify', '-CAfile', join(gwData, 'ca.pem'), join(gwData, 'gateway.crt')]);
    expect(verify.stdout).toContain(': OK');
  });

  it('the channel is open over wss with the certificate, registration over https decides, and a block command arrives', async () => {
    await until('channel connected', async () => (await api<{ connected: boolean }>('GET', `/api/v1/gateways/${gatewayId}`)).connected);
    const space = await api<{ id: string }>('POST', '/api/v1/spaces', { name: 'lab', phase: 1 });
    const b = randomBytes(6);
    b[0] = (b[0]! & 0xfc) | 0x02;
    const mac = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':');
    const metal = await api<{ id: string }>('POST', '/api/v1/metals', { name: 'tls-one', interfaces: [{ name: 'eth0', mac, type: 'ethernet', pxe: true }] });
    await api('POST', `/api/v1/spaces/${space.id}/members`, { metal: metal.id, interfaces: ['eth0'], default: true });
    const ns = await topo.namespace('metal1');
    await topo.veth(ns, 'eth0', gw, 'm1p0', { aMac: mac });
    await gw.enslave('m1p0', 'br0');
    ns.spawn('udhcpc', ['-f', '-i', 'eth0', '-s', join(work, 'udhcpc.sh'), '-t', '5', '-T', '1', '-A', '1'], { label: 'udhcpc metal1' });
    const active = await until('row active', async () => {
      const r = await tableRow(mac);
      return r?.state === 'active' ? r : undefined;
    });
    expect(active.tipsId).toBe(metal.id);
    // Issue 13: the registration went over mTLS without a TIPS-GW-1 signature (the channel authenticated
    // the gateway), while the table and the channel are still signed; nothing was refused.
    const metrics = await (await fetch(`${ownerUrl}/metrics`)).text();
    expect(metrics).toMatch(/tips_master_gateway_auth_total\{mode="channel",result="ok"\} [1-9]/);
    expect(metrics).toMatch(/tips_master_gateway_auth_total\{mode="signature",result="ok"\} [1-9]/);
    expect(metrics).not.toMatch(/tips_master_gateway_auth_total\{mode="\w+",result="refused"\}/);
    // The block travels master → gateway over the mTLS channel.
    await api('POST', `/api/v1/metals/${metal.id}/block`, { reason: 'tls e2e' });
    await until('row blocked', async () => (await tableRow(mac))?.state === 'blocked', 10_000);
    // The table snapshot reached the master over https too.
    await until('table at the master', async () => {
      const g = await api<{ table: { rows: { mac: string }[] } | null }>('GET', `/api/v1/gateways/${gatewayId}`);
      return g.table?.rows.some((r) => r.mac === mac);
    });
    expect(readFileSync(join(work, 'gateway.log'), 'utf8')).not.toContain('master refused the channel');
  });
});
