// A gateway lab over ip netns for e2e suites: a "cloud" namespace with the real tips-master, a
// gateway namespace (uplink up0 + LAN bridge br0) running the real tips-gateway enrolled with that
// master, and metal namespaces on the bridge whose DHCP client is busybox udhcpc.
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Namespace, type NsProcess, Topology, until } from '@tips/testbed';
import { ROOT } from './helpers.ts';

export const MASTER_BIN = join(ROOT, 'apps/master/bin/tips-master.js');
export const GATEWAY_BIN = join(ROOT, 'apps/gateway/bin/tips-gateway.js');

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

export interface LabAddresses {
  /** The master's address in the cloud (the gateway's default route). */
  masterIp: string;
  gatewayUplinkIp: string;
  /** The gateway's LAN address (/24); the pool is .100–.200 of it. */
  gatewayLanIp: string;
}

export interface Metal {
  ns: Namespace;
  dhcp: NsProcess[];
  macs: string[];
  events: string;
}

export interface TableRow {
  mac: string;
  state: string;
  tipsId: string | null;
  ip: string | null;
  reason: string | null;
}

export function randomMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0]! & 0xfc) | 0x02; // locally administered, unicast
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':');
}

export class GatewayLab {
  readonly adminToken = `tips_${randomBytes(24).toString('base64url')}`;
  readonly masterPort = 8080;
  masterUrl = '';
  master!: NsProcess;
  gateway!: NsProcess;
  cloud!: Namespace;
  gw!: Namespace;
  phase1Space = '';
  private metals = 0;
  /** Added to `tips-master` (e.g. a TLS listener the metals reach). */
  private masterArgs: string[] = [];
  private readonly work = mkdtempSync(join(tmpdir(), 'tgw-lab-'));
  private readonly gwData = join(this.work, 'gateway');

  private constructor(
    readonly topo: Topology,
    readonly addr: LabAddresses,
  ) {}

  /**
   * Builds the namespaces, starts and enrolls everything; `gatewayArgs` are added to `tips-gateway run`.
   * The gateway's own TFTP/HTTP boot services run only with `bootServices` (suites that put their own
   * listeners on the LAN boot ports need those ports free).
   */
  static async start(area: string, addr: LabAddresses, gatewayArgs: string[] = [], opts: { bootServices?: boolean; masterArgs?: string[] } = {}): Promise<GatewayLab> {
    const lab = new GatewayLab(await Topology.create(area), addr);
    lab.masterArgs = opts.masterArgs ?? [];
    try {
      await lab.build(opts.bootServices ? gatewayArgs : [...gatewayArgs, '--no-boot-services']);
    } catch (err) {
      await lab.destroy();
      throw err;
    }
    return lab;
  }

  private async build(gatewayArgs: string[]): Promise<void> {
    const { topo, addr } = this;
    writeFileSync(join(this.work, 'udhcpc.sh'), UDHCPC_SCRIPT);
    chmodSync(join(this.work, 'udhcpc.sh'), 0o755);
    this.cloud = await topo.namespace('cloud');
    this.gw = await topo.namespace('gw');
    await topo.veth(this.cloud, 'eth0', this.gw, 'up0');
    await this.cloud.addAddress('eth0', `${addr.masterIp}/24`);
    await this.gw.addAddress('up0', `${addr.gatewayUplinkIp}/24`);
    await this.gw.defaultRoute(addr.masterIp);
    await this.gw.bridge('br0');
    await this.gw.addAddress('br0', `${addr.gatewayLanIp}/24`);
    await this.gw.sysctl('net.ipv4.ip_forward', '1');
    // The cloud has no route to the metals' LAN: only NAT can bring answers back.
    const link = await topo.hostLink(this.cloud, 'h0');
    this.masterUrl = `http://${link.nsIp}:${this.masterPort}`;
    await this.startMaster();
    this.phase1Space = (await this.api<{ id: string }>('POST', '/api/v1/spaces', { name: 'lab-phase1', phase: 1 })).id;
    const created = await this.api<{ enrollmentToken: string }>('POST', '/api/v1/gateways', { name: 'gw-lab' });
    await this.gw.execOk('node', [GATEWAY_BIN, 'enroll', '--master', `http://${addr.masterIp}:${this.masterPort}`, '--token', created.enrollmentToken, '--data-dir', this.gwData, '--json']);
    const lan = addr.gatewayLanIp.replace(/\.\d+$/, '');
    this.gateway = this.gw.spawn(
      'node',
      [
        GATEWAY_BIN,
        'run',
        ...['--lan', 'br0', '--uplink', 'up0', '--pool', `${lan}.100-${lan}.200`, '--data-dir', this.gwData, '--lease-time', '600s'],
        ...['--retry-initial', '200ms', '--retry-max', '1s', '--nft-table', 'tips_gw', '--status-port', '0'],
        ...gatewayArgs,
      ],
      { logFile: join(this.work, 'gateway.log'), label: 'tips-gateway' },
    );
    await this.gateway.waitFor(/"msg":"ready"/, 30_000);
  }

  /** Starts (or restarts) the real master in the cloud namespace and waits until it is ready. */
  async startMaster(): Promise<void> {
    this.master = this.cloud.spawn(
      'node',
      [MASTER_BIN, '--port', String(this.masterPort), '--host', '0.0.0.0', '--data-dir', join(this.work, 'master'), ...this.masterArgs],
      { env: { ...process.env, TIPS_BOOTSTRAP_ADMIN_TOKEN: this.adminToken, TIPS_LOG_LEVEL: 'warn' }, logFile: join(this.work, 'master.log'), label: 'tips-master' },
    );
    await until(
      'master /readyz',
      async () => {
        if (!this.master.running) throw new Error(`master exited (${this.master.exitCode}):\n${this.master.output.slice(-3000)}`);
        return (await fetch(`${this.masterUrl}/readyz`, { signal: AbortSignal.timeout(1000) })).status === 200;
      },
      // Generous: the machine's cores are shared with other suites and tsx transpiles on a cold start.
      90_000,
    );
  }

  async api<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.masterUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (res.status >= 400) throw new Error(`${method} ${path} → ${res.status} ${text}`);
    return (text ? JSON.parse(text) : {}) as T;
  }

  /** A metal with one interface whose MAC is in the lab's Phase 1 Space as its default. */
  async declareMetal(name: string, mac: string): Promise<{ id: string }> {
    const metal = await this.api<{ id: string }>('POST', '/api/v1/metals', { name, interfaces: [{ name: 'eth0', mac, type: 'ethernet', pxe: true }] });
    await this.api('POST', `/api/v1/spaces/${this.phase1Space}/members`, { metal: metal.id, interfaces: ['eth0'], default: true });
    return metal;
  }

  /** The udhcpc hook script (records events to $EVENTS, configures the address). */
  get udhcpcScript(): string {
    return join(this.work, 'udhcpc.sh');
  }

  /** The gateway's data directory. */
  get gatewayDataDir(): string {
    return this.gwData;
  }

  /** A metal namespace with one veth per MAC on the gateway's LAN bridge, each running udhcpc (with `udhcpcArgs`). */
  async startMetal(macs: string[], opts: { udhcpcArgs?: string[] } = {}): Promise<Metal> {
    const n = ++this.metals;
    const ns = await this.topo.namespace(`metal${n}`);
    const events = join(this.work, `metal${n}.events`);
    writeFileSync(events, '');
    const dhcp: NsProcess[] = [];
    for (const [i, mac] of macs.entries()) {
      const port = `m${n}p${i}`;
      await this.topo.veth(ns, `eth${i}`, this.gw, port, { aMac: mac });
      await this.gw.enslave(port, 'br0');
      dhcp.push(
        ns.spawn('udhcpc', ['-f', '-i', `eth${i}`, '-s', join(this.work, 'udhcpc.sh'), '-t', '3', '-T', '1', '-A', '1', '-x', `hostname:metal${n}-${i}`, ...(opts.udhcpcArgs ?? [])], {
          env: { ...process.env, EVENTS: events, METRIC: String(100 + i) },
          label: `udhcpc metal${n}/eth${i}`,
        }),
      );
    }
    return { ns, dhcp, macs, events };
  }

  async leased(m: Metal, i = 0): Promise<string> {
    const match = await m.dhcp[i]!.waitFor(/lease of (\d+\.\d+\.\d+\.\d+) obtained/, 20_000);
    return match[1]!;
  }

  async row(mac: string): Promise<TableRow | undefined> {
    const r = await this.gw.execOk('node', [GATEWAY_BIN, 'table', '--data-dir', this.gwData, '--json']);
    return (JSON.parse(r.stdout) as { rows: TableRow[] }).rows.find((x) => x.mac === mac);
  }

  async rowInState(mac: string, state: string, timeoutMs = 20_000): Promise<TableRow> {
    return until(
      `${mac} ${state}`,
      async () => {
        const r = await this.row(mac);
        return r?.state === state ? r : undefined;
      },
      timeoutMs,
    );
  }

  async destroy(): Promise<void> {
    await this.topo.destroy();
    if (!process.env.TGW_KEEP) rmSync(this.work, { recursive: true, force: true });
  }
}
