// A multi-homed metal for T17 (e2e and bench/multihoming): a "cloud" namespace running the real
// tips-master, reachable at 10.71.0.1 (on its loopback) over two veth links from the metal namespace:
//   metal eth1 10.71.1.2 ⇄ cloud m1 10.71.1.1        metal eth2 10.71.2.2 ⇄ cloud m2 10.71.2.1
// The metal routes by source address (one table per link, as any multi-homed host must: a socket
// bound to 10.71.2.2 leaves through eth2), and a source whose link is down is unreachable rather
// than silently sent out of the other link. The test process reaches the master's owner API over a
// host link. The client is the real tips-client bundle under Debian's Node 18 (else this node).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { classIdFrom, uuidToString, vendorIdFromDomain } from '@tips/suit';
import { type Namespace, type NsProcess, Topology, until } from '@tips/testbed';
import { debianNode18 } from './client-node18.ts';
import { MASTER_BIN } from './gateway-topology.ts';
import { ROOT, tips } from './helpers.ts';

export const CLIENT_BUNDLE = join(ROOT, 'apps/client/dist/tips-client.cjs');
export const MASTER_IP = '10.71.0.1';
export const LINKS = [
  { metalIf: 'eth1', cloudIf: 'm1', metalIp: '10.71.1.2', cloudIp: '10.71.1.1', table: '101', mac: '02:17:00:00:01:02' },
  { metalIf: 'eth2', cloudIf: 'm2', metalIp: '10.71.2.2', cloudIp: '10.71.2.1', table: '102', mac: '02:17:00:00:02:02' },
] as const;
const VENDOR = uuidToString(vendorIdFromDomain('acme.example'));
const CLASS = uuidToString(classIdFrom(vendorIdFromDomain('acme.example'), 'pi4'));

export class MultihomeLab {
  readonly work = mkdtempSync(join(tmpdir(), 'tips-multihome-'));
  readonly admin = `tips_${randomBytes(24).toString('base64url')}`;
  cloud!: Namespace;
  metalNs!: Namespace;
  master!: NsProcess;
  apiUrl = '';
  readonly tlsUrl = `https://${MASTER_IP}:8443`;
  node: string[] = [process.execPath];
  nodeVersion = process.version;
  metalId = '';
  config = '';
  state = '';

  private constructor(readonly topo: Topology) {}

  static async start(): Promise<MultihomeLab> {
    const lab = new MultihomeLab(await Topology.create('mh'));
    try {
      await lab.build();
    } catch (e) {
      await lab.destroy();
      throw e;
    }
    return lab;
  }

  private async build(): Promise<void> {
    const n18 = debianNode18();
    if (n18) {
      this.node = n18.argv;
      this.nodeVersion = n18.version;
    }
    this.cloud = await this.topo.namespace('cloud');
    this.metalNs = await this.topo.namespace('metal');
    await this.cloud.addAddress('lo', `${MASTER_IP}/32`);
    for (const l of LINKS) {
      await this.topo.veth(this.metalNs, l.metalIf, this.cloud, l.cloudIf, { aMac: l.mac });
      await this.metalNs.addAddress(l.metalIf, `${l.metalIp}/24`);
      await this.cloud.addAddress(l.cloudIf, `${l.cloudIp}/24`);
      // Source routing: what is bound to this link's address leaves through this link, or nowhere.
      await this.metalNs.ip('route', 'add', `${MASTER_IP}/32`, 'via', l.cloudIp, 'dev', l.metalIf, 'table', l.table);
      await this.metalNs.ip('route', 'add', 'unreachable', `${MASTER_IP}/32`, 'metric', '9999', 'table', l.table);
      await this.metalNs.ip('rule', 'add', 'from', l.metalIp, 'lookup', l.table, 'priority', String(Number(l.table) + 1000));
    }
    // Unbound sockets (enrollment, the API calls) take the first link.
    await this.metalNs.ip('route', 'add', `${MASTER_IP}/32`, 'via', LINKS[0].cloudIp, 'dev', LINKS[0].metalIf);
    const host = await this.topo.hostLink(this.cloud, 'h0');
    this.apiUrl = `http://${host.nsIp}:8080`;

    const init = tips(['ca', 'init', '--out', join(this.work, 'offline'), '--name', 'Multihome E2E'], {});
    if (init.status !== 0) throw new Error(`tips ca init: ${init.stderr}`);
    mkdirSync(join(this.work, 'master-ca'));
    for (const f of ['root.pem', 'intermediate.pem', 'intermediate-key.pem']) copyFileSync(join(this.work, 'offline', f), join(this.work, 'master-ca', f));
    this.master = this.cloud.spawn(
      'node',
      [MASTER_BIN, '--port', '8080', '--tls-port', '8443', '--host', '0.0.0.0', '--tls-hostname', MASTER_IP, '--data-dir', join(this.work, 'data'), '--ca-dir', join(this.work, 'master-ca')],
      { env: { ...process.env, TIPS_BOOTSTRAP_ADMIN_TOKEN: this.admin, TIPS_LOG_LEVEL: process.env.TIPS_MASTER_LOG_LEVEL ?? 'info' }, logFile: join(this.work, 'master.log'), label: 'tips-master' },
    );
    await until(
      'master /readyz',
      async () => {
        if (!this.master.running) throw new Error(`master exited (${this.master.exitCode}):\n${this.master.output.slice(-3000)}`);
        return (await fetch(`${this.apiUrl}/readyz`, { signal: AbortSignal.timeout(1000) }).catch(() => undefined))?.status === 200;
      },
      60_000,
    );
    await this.master.waitFor(/TLS listening/, 30_000);
    this.cli(['key', 'create', '--out', join(this.work, 'ops.pem'), '--register', 'ops', '--json']);
  }

  cli(args: string[]): Record<string, unknown> & { id: string } {
    const r = tips(args, { TIPS_URL: this.apiUrl, TIPS_TOKEN: this.admin, TIPS_CONFIG: join(this.work, 'no-config.json') });
    if (r.status !== 0) throw new Error(`tips ${args.join(' ')} → ${r.status}\n${r.stderr}`);
    return JSON.parse(r.stdout);
  }

  async api<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.apiUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.admin}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (res.status >= 400) throw new Error(`${method} ${path} → ${res.status} ${text}`);
    return (text ? JSON.parse(text) : {}) as T;
  }

  /** The metal (both interfaces in its Metal Object), a Phase 2 Space linking both, and an enrolled client. */
  async metalInSpace(space: string, links: readonly string[] = LINKS.map((l) => l.metalIf)): Promise<void> {
    const m = this.cli(['metal', 'create', '--name', 'mh-1', ...LINKS.flatMap((l, i) => ['--iface', `${l.metalIf}=${l.mac},ethernet${i === 0 ? ',pxe' : ''}`]), '--json']);
    this.metalId = m.id;
    this.cli(['space', 'create', '--name', space, '--phase', '2', '--json']);
    this.cli(['space', 'add', space, 'mh-1', ...links.flatMap((l) => ['--iface', l]), '--json']);
    const secret = this.cli(['enrollment', 'secret', 'create', '--metal', 'mh-1', '--json']) as unknown as { id: string; secret: string };
    const etc = join(this.work, 'etc');
    mkdirSync(etc, { recursive: true });
    copyFileSync(join(this.work, 'offline', 'root.pem'), join(etc, 'ca.pem'));
    this.state = join(this.work, 'state');
    this.config = join(etc, 'config.json');
    writeFileSync(
      this.config,
      JSON.stringify({
        masterUrl: this.tlsUrl,
        estUrl: `${this.tlsUrl}/.well-known/est`,
        caFile: join(etc, 'ca.pem'),
        tipsId: m.id,
        metalId: m.id,
        enrollmentFile: join(etc, 'enrollment.json'),
        stateDir: this.state,
        vendorId: VENDOR,
        classId: CLASS,
      }),
    );
    writeFileSync(join(etc, 'enrollment.json'), JSON.stringify({ secretId: secret.id, secret: secret.secret }), { mode: 0o600 });
    const r = await this.metalNs.exec(this.node[0]!, [...this.node.slice(1), CLIENT_BUNDLE, 'enroll', '--config', this.config], { timeoutMs: 120_000 });
    if (r.code !== 0) throw new Error(`tips-client enroll: ${r.stdout}${r.stderr}`);
  }

  /** A signed archive Glaze (a .tar.gz of `bytes` random bytes and hello.txt) set on `space`. */
  glaze(space: string, name: string, version: string, seq: number, bytes: number): { id: string; sha256: string; size: number } {
    const src = join(this.work, `src-${name}-${version}`);
    mkdirSync(src, { recursive: true });
    writeFileSync(join(src, 'hello.txt'), `${name} ${version}`);
    writeFileSync(join(src, 'random.bin'), randomBytes(bytes));
    const tgz = join(this.work, `${name}-${version}.tgz`);
    // gzip -1: the payload is random and does not compress; a higher level only costs time.
    const tar = spawnSync('tar', ['-C', src, '-cf', tgz, '--use-compress-program=gzip -1', '.'], { encoding: 'utf8' });
    if (tar.status !== 0) throw new Error(`tar: ${tar.stderr}`);
    const g = this.cli([
      'glaze', 'push', tgz, '--name', name, '--version', version, '--handler', 'archive', '--space', space,
      '--sign-key', join(this.work, 'ops.pem'), '--vendor-domain', 'acme.example', '--class', 'pi4', '--component', name, '--seq', String(seq),
      '--no-progress', '--json',
    ]) as unknown as { id: string; sha256: string; size: number };
    this.cli(['space', 'update', space, '--glaze', g.id, '--json']);
    return g;
  }

  /** `tips-client run --once` in the metal namespace (a long-lived process the caller waits for or kills). */
  client(extra: string[] = [], label = 'tips-client'): NsProcess {
    return this.metalNs.spawn(this.node[0]!, [...this.node.slice(1), CLIENT_BUNDLE, 'run', '--once', '--config', this.config, ...extra], { label, logFile: join(this.work, `${label}.log`) });
  }

  /** Bytes received by each of the metal's links so far (the kernel's counters, `ip -s link`). */
  async rxBytes(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const l of LINKS) {
      const j = JSON.parse((await this.metalNs.ip('-s', '-j', 'link', 'show', 'dev', l.metalIf)).stdout) as { stats64: { rx: { bytes: number } } }[];
      out[l.metalIf] = j[0]!.stats64.rx.bytes;
    }
    return out;
  }

  /** Shapes what the master sends on each link (tbf on the cloud end) to `mbit`; `undefined` removes it. */
  async shape(mbit: number | undefined, links: readonly string[] = LINKS.map((l) => l.cloudIf)): Promise<void> {
    for (const dev of links) {
      await this.cloud.exec('tc', ['qdisc', 'del', 'dev', dev, 'root']);
      if (mbit !== undefined) await this.cloud.execOk('tc', ['qdisc', 'add', 'dev', dev, 'root', 'tbf', 'rate', `${mbit}mbit`, 'burst', '32kb', 'latency', '200ms']);
    }
  }

  /** Cuts or restores a link (the kernel drops a link's routes when it goes down: they are put back). */
  async setLink(metalIf: string, state: 'up' | 'down'): Promise<void> {
    await this.metalNs.ip('link', 'set', metalIf, state);
    const l = LINKS.find((x) => x.metalIf === metalIf)!;
    if (state === 'up') {
      await until('carrier', async () => (await this.metalNs.ip('-j', 'link', 'show', 'dev', metalIf)).stdout.includes('LOWER_UP'), 10_000);
      await this.metalNs.ip('route', 'replace', `${MASTER_IP}/32`, 'via', l.cloudIp, 'dev', l.metalIf, 'table', l.table);
      if (l === LINKS[0]) await this.metalNs.ip('route', 'replace', `${MASTER_IP}/32`, 'via', l.cloudIp, 'dev', l.metalIf);
    }
  }

  async destroy(): Promise<void> {
    await this.topo.destroy();
    rmSync(this.work, { recursive: true, force: true });
  }
}
