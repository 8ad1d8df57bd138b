// Network-namespace topologies for e2e tests and benches: namespaces, veth pairs, bridges, addresses,
// routes, and processes started inside a namespace. Every name carries `tb-<area>-<pid>-<random>` so
// parallel runs never collide and a later run can sweep what a crashed one left behind.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';

export class TestbedError extends Error {
  constructor(
    readonly code: 'command_failed' | 'bad_name' | 'timeout' | 'no_free_subnet',
    message: string,
  ) {
    super(message);
    this.name = 'TestbedError';
  }
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command (no shell) and resolves with its exit code and output; never rejects on a non-zero exit. */
export function run(cmd: string, args: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: opts.timeoutMs ?? 30_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && typeof (err as { code?: unknown }).code !== 'number') {
        if ((err as { killed?: boolean }).killed) {
          resolve({ code: -1, stdout: String(stdout), stderr: `${stderr}\n(killed after timeout)` });
          return;
        }
        reject(err);
        return;
      }
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Like run() but throws TestbedError on a non-zero exit. */
export async function runOk(cmd: string, args: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<ExecResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new TestbedError('command_failed', `${cmd} ${args.join(' ')} → exit ${r.code}: ${r.stderr.trim().slice(0, 800)}`);
  return r;
}

const NETNS_PREFIX = 'tb-';
const STALE = /^tb-[a-z0-9]+-(\d+)-[0-9a-f]+-/;

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function listNamespaces(): Promise<string[]> {
  const r = await runOk('ip', ['netns', 'list']);
  return r.stdout
    .split('\n')
    .map((l) => l.split(' ')[0]!.trim())
    .filter((n) => n.length > 0);
}

async function killNamespaceProcesses(ns: string): Promise<void> {
  const r = await run('ip', ['netns', 'pids', ns]);
  for (const p of r.stdout.split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(p), 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

async function deleteNamespace(ns: string): Promise<void> {
  await killNamespaceProcesses(ns);
  await run('ip', ['netns', 'del', ns]);
}

/** Deletes `tb-*` namespaces whose creating process is dead (left by crashed runs). Returns their names. */
export async function sweepStaleNamespaces(): Promise<string[]> {
  const swept: string[] = [];
  for (const ns of await listNamespaces()) {
    const m = STALE.exec(ns);
    if (!m || pidAlive(Number(m[1]))) continue;
    await deleteNamespace(ns);
    swept.push(ns);
  }
  return swept;
}

/** A process started inside a namespace. Output is kept (last 1 MiB) and optionally teed to a file. */
export class NsProcess {
  private buf = '';
  readonly exited: Promise<number | null>;
  exitCode: number | null | undefined;

  constructor(
    readonly child: ChildProcess,
    readonly label: string,
    logFile?: string,
  ) {
    let log: WriteStream | undefined;
    if (logFile) log = createWriteStream(logFile, { flags: 'a' });
    const take = (d: Buffer) => {
      this.buf = (this.buf + d.toString()).slice(-1024 * 1024);
      log?.write(d);
    };
    child.stdout?.on('data', take);
    child.stderr?.on('data', take);
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.exitCode = code ?? (signal ? -1 : null);
        log?.end();
        resolve(code);
      });
      child.on('error', () => resolve(-1));
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get output(): string {
    return this.buf;
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  /** Resolves when the output matches, rejects on timeout or exit. */
  async waitFor(pattern: RegExp, timeoutMs = 15_000): Promise<RegExpMatchArray> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const m = this.buf.match(pattern);
      if (m) return m;
      if (!this.running) throw new TestbedError('command_failed', `${this.label} exited (${this.exitCode}) before printing ${pattern}:\n${this.buf.slice(-2000)}`);
      if (Date.now() > end) throw new TestbedError('timeout', `${this.label}: no ${pattern} within ${timeoutMs} ms:\n${this.buf.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  signal(sig: NodeJS.Signals): void {
    if (this.running) this.child.kill(sig);
  }

  /** SIGTERM, then SIGKILL after the grace period. */
  async stop(graceMs = 3000): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(t);
  }

  async kill9(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

export class Namespace {
  constructor(
    readonly name: string,
    private readonly topo: Topology,
  ) {}

  exec(cmd: string, args: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<ExecResult> {
    return run('ip', ['netns', 'exec', this.name, cmd, ...args], opts);
  }

  execOk(cmd: string, args: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<ExecResult> {
    return runOk('ip', ['netns', 'exec', this.name, cmd, ...args], opts);
  }

  /** `ip` inside the namespace. */
  ip(...args: string[]): Promise<ExecResult> {
    return runOk('ip', ['-n', this.name, ...args]);
  }

  /** Starts a long-running process in the namespace; the topology kills it on destroy. */
  spawn(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; logFile?: string; label?: string } = {}): NsProcess {
    const child = spawn('ip', ['netns', 'exec', this.name, cmd, ...args], {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const p = new NsProcess(child, opts.label ?? `${cmd}@${this.name}`, opts.logFile);
    this.topo.track(p);
    return p;
  }

  async addAddress(iface: string, cidr: string): Promise<void> {
    await this.ip('addr', 'add', cidr, 'dev', iface);
  }

  async up(iface: string): Promise<void> {
    await this.ip('link', 'set', iface, 'up');
  }

  async bridge(name: string): Promise<void> {
    await this.ip('link', 'add', name, 'type', 'bridge');
    await this.up(name);
  }

  async enslave(iface: string, bridge: string): Promise<void> {
    await this.ip('link', 'set', iface, 'master', bridge);
  }

  async defaultRoute(via: string): Promise<void> {
    await this.ip('route', 'replace', 'default', 'via', via);
  }

  async sysctl(key: string, value: string): Promise<void> {
    await this.execOk('sysctl', ['-q', '-w', `${key}=${value}`]);
  }
}

const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

/**
 * A set of namespaces owned by one test run. `await using topo = await Topology.create('gw')` (or
 * try/finally with destroy()) removes every namespace, and with it every veth and nft table in it,
 * and kills every process started in it.
 */
export class Topology {
  private readonly namespaces: Namespace[] = [];
  private readonly processes: NsProcess[] = [];
  private destroyed = false;
  readonly id: string;

  private constructor(readonly area: string) {
    this.id = `${NETNS_PREFIX}${area}-${process.pid}-${randomBytes(3).toString('hex')}`;
  }

  static async create(area: string): Promise<Topology> {
    if (!/^[a-z0-9]{1,8}$/.test(area)) throw new TestbedError('bad_name', `area "${area}" must be 1–8 lower-case letters/digits`);
    await sweepStaleNamespaces();
    return new Topology(area);
  }

  track(p: NsProcess): void {
    this.processes.push(p);
  }

  async namespace(role: string): Promise<Namespace> {
    if (!/^[a-z0-9]{1,16}$/.test(role)) throw new TestbedError('bad_name', `role "${role}" must be 1–16 lower-case letters/digits`);
    const name = `${this.id}-${role}`;
    await runOk('ip', ['netns', 'add', name]);
    const ns = new Namespace(name, this);
    this.namespaces.push(ns);
    await ns.up('lo');
    return ns;
  }

  /** A veth pair created directly inside the two namespaces (no name ever exists in the host). */
  async veth(a: Namespace, aName: string, b: Namespace, bName: string, opts: { aMac?: string; bMac?: string } = {}): Promise<void> {
    for (const n of [aName, bName]) if (!IFNAME.test(n)) throw new TestbedError('bad_name', `interface name "${n}" is invalid`);
    const args = ['link', 'add', aName, 'netns', a.name];
    if (opts.aMac) args.push('address', opts.aMac);
    args.push('type', 'veth', 'peer', 'name', bName, 'netns', b.name);
    if (opts.bMac) args.push('address', opts.bMac);
    await runOk('ip', args);
    await a.up(aName);
    await b.up(bName);
  }

  /**
   * A veth between the host and a namespace on a free /30 (so the test process can reach servers in
   * the namespace). The host end disappears with the namespace.
   */
  async hostLink(ns: Namespace, nsName: string): Promise<{ hostIp: string; nsIp: string; hostIface: string }> {
    const routes = (await runOk('ip', ['-4', 'route', 'show', 'table', 'all'])).stdout;
    for (let attempt = 0; attempt < 64; attempt++) {
      const r = randomBytes(2);
      const base = `100.${64 + (r[0]! % 64)}.${r[1]}`;
      const last = 4 * (randomBytes(1)[0]! % 63) + 4;
      if (routes.includes(`${base}.`)) continue;
      const hostIface = `tb${randomBytes(4).toString('hex')}`;
      await runOk('ip', ['link', 'add', hostIface, 'type', 'veth', 'peer', 'name', nsName, 'netns', ns.name]);
      const hostIp = `${base}.${last + 1}`;
      const nsIp = `${base}.${last + 2}`;
      await runOk('ip', ['addr', 'add', `${hostIp}/30`, 'dev', hostIface]);
      await runOk('ip', ['link', 'set', hostIface, 'up']);
      await ns.addAddress(nsName, `${nsIp}/30`);
      await ns.up(nsName);
      return { hostIp, nsIp, hostIface };
    }
    throw new TestbedError('no_free_subnet', 'no free /30 in 100.64.0.0/10 for a host link');
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await Promise.all(this.processes.map((p) => p.stop(1000).catch(() => undefined)));
    for (const ns of this.namespaces.reverse()) await deleteNamespace(ns.name);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.destroy();
  }
}
