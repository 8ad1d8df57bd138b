// nftables rendering (pure) and the Linux adapter. The whole table is rendered from the interface
// table and loaded with one `nft -f -` transaction (add/delete/define), so the kernel never sees a
// half-written policy. A metal on the LAN reaches the gateway only at the gateway's LAN address:
// unknown sources may only talk DHCP; Pending may also reach the boot services (BOOT_PORTS);
// Active may also leave through the uplink (masqueraded) and ping the gateway; Blocked nothing.
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import type { InterfaceRow } from '../table/table.ts';
import { type Enforcer, EnforcerError, type RowChange } from './enforcer.ts';

export interface RuleConfig {
  /** nft table name (family inet). */
  table: string;
  /** The LAN interfaces where metals live. */
  lan: string[];
  /** The gateway's own IPv4 address on the LAN: the only gateway address a metal may reach (T7). */
  lanAddress: string;
  uplink: string;
  /** Gateway boot services reachable by Pending and Active metals, at lanAddress only (BOOT_PORTS). */
  bootUdpPorts: number[];
  bootTcpPorts: number[];
  /**
   * The onboarding relay's TCP port (issue 11), when it is on: the one gateway port every LAN
   * source may reach — unknown, Pending and Blocked alike — at lanAddress only. The relay itself
   * refuses sources without a lease and interfaces blocked for any reason but an unknown MAC.
   */
  onboardingRelayPort?: number;
}

// The patterns sit inside the checks (not module constants) so mutation testing exercises them.
function checkName(n: string, what: string): string {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(n)) throw new EnforcerError('bad_name', `${what} "${n}" is not a valid interface/table name`);
  return n;
}

function checkIpv4(ip: string, what: string): string {
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(ip)) throw new EnforcerError('bad_name', `${what} "${ip}" is not IPv4`);
  return ip;
}

function set(name: string, type: string, elements: string[]): string {
  const body = elements.length > 0 ? `\n\t\telements = { ${elements.join(', ')} }` : '';
  return `\tset ${name} {\n\t\ttype ${type}${body}\n\t}`;
}

function ports(p: number[], what: string): string {
  for (const n of p) {
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw new EnforcerError('bad_port', `${what} port ${n} is not 1..65535`);
  }
  return `{ ${p.join(', ')} }`;
}

/** The one set element a row puts in force (Active also names its address in `active_ip`); none for an Active row without an address. */
export type RowElement = { set: 'pending'; element: string } | { set: 'blocked'; element: string } | { set: 'active'; element: string; ip: string };

/** Validates the row's MAC, interface and address, and renders its element. Pure. */
export function rowElements(r: InterfaceRow): RowElement | undefined {
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(r.mac)) throw new EnforcerError('bad_name', `row MAC "${r.mac}" is not lower-case colon form`);
  checkName(r.gatewayInterface, 'gateway interface');
  const ifmac = `"${r.gatewayInterface}" . ${r.mac}`;
  if (r.state === 'blocked') return { set: 'blocked', element: ifmac };
  if (r.state === 'pending') return { set: 'pending', element: ifmac };
  if (r.ip === null) return undefined;
  return { set: 'active', element: `${ifmac} . ${checkIpv4(r.ip, 'row address')}`, ip: r.ip };
}

const rowKey = (mac: string, gi: string) => `${gi}|${mac}`;

/**
 * What the kernel holds, per interface, as the enforcer last loaded it: the base an incremental
 * change is computed from. `active_ip` is counted, since two rows may (briefly) share an address.
 */
export class EnforcedElements {
  private readonly byRow = new Map<string, RowElement>();
  private readonly ipRefs = new Map<string, number>();

  static of(rows: InterfaceRow[]): EnforcedElements {
    const e = new EnforcedElements();
    for (const r of rows) {
      const el = rowElements(r);
      if (el) e.put(rowKey(r.mac, r.gatewayInterface), el);
    }
    return e;
  }

  private put(k: string, el: RowElement): void {
    this.byRow.set(k, el);
    if (el.set === 'active') this.ipRefs.set(el.ip, (this.ipRefs.get(el.ip) ?? 0) + 1);
  }

  /**
   * The nft commands (one transaction: deletions first) that move the kernel from this state to
   * the one with `changes` applied, and `commit`, which makes this state that one once the kernel
   * took them. Costs what the changes touch: nothing is copied or scanned per row of the table.
   */
  diff(table: string, changes: RowChange[]): { commands: string[]; commit: () => void } {
    // The last change of an interface is its state now; elements are keyed by (interface, MAC), so
    // two interfaces never share one — only `active_ip` entries are shared, hence counted.
    const now = new Map<string, RowElement | undefined>();
    for (const c of changes) now.set(rowKey(c.mac, c.gatewayInterface), c.row ? rowElements(c.row) : undefined);
    const del: string[] = [];
    const add: string[] = [];
    const ipDelta = new Map<string, number>();
    const updates: [string, RowElement | undefined][] = [];
    const cmd = (verb: 'add' | 'delete', set: string, element: string) => `${verb} element inet ${table} ${set} { ${element} }`;
    for (const [k, after] of now) {
      const before = this.byRow.get(k);
      if (before?.set === after?.set && before?.element === after?.element) continue;
      updates.push([k, after]);
      if (before) {
        del.push(cmd('delete', before.set, before.element));
        if (before.set === 'active') ipDelta.set(before.ip, (ipDelta.get(before.ip) ?? 0) - 1);
      }
      if (after) {
        add.push(cmd('add', after.set, after.element));
        if (after.set === 'active') ipDelta.set(after.ip, (ipDelta.get(after.ip) ?? 0) + 1);
      }
    }
    for (const [ip, d] of ipDelta) {
      const was = this.ipRefs.get(ip) ?? 0;
      if (was > 0 && was + d === 0) del.push(cmd('delete', 'active_ip', ip));
      if (was === 0 && d > 0) add.push(cmd('add', 'active_ip', ip));
    }
    const commit = () => {
      for (const [k, el] of updates) {
        if (el) this.byRow.set(k, el);
        else this.byRow.delete(k);
      }
      for (const [ip, d] of ipDelta) {
        const n = (this.ipRefs.get(ip) ?? 0) + d;
        if (n > 0) this.ipRefs.set(ip, n);
        else this.ipRefs.delete(ip);
      }
    };
    return { commands: [...del, ...add], commit };
  }
}

/** Renders the complete nft script for the rows. Pure; validates every name and address it embeds. */
export function renderRuleset(cfg: RuleConfig, rows: InterfaceRow[]): string {
  const table = checkName(cfg.table, 'table');
  const uplink = checkName(cfg.uplink, 'uplink');
  const lans = cfg.lan.map((l) => checkName(l, 'lan'));
  if (lans.length === 0) throw new EnforcerError('bad_name', 'at least one LAN interface is needed');
  const lanIp = checkIpv4(cfg.lanAddress, 'LAN address');
  const active: string[] = [];
  const activeIp = new Set<string>();
  const pending: string[] = [];
  const blocked: string[] = [];
  for (const r of rows) {
    const e = rowElements(r);
    if (e === undefined) continue;
    if (e.set === 'blocked') blocked.push(e.element);
    else if (e.set === 'pending') pending.push(e.element);
    else {
      active.push(e.element);
      activeIp.add(e.ip);
    }
  }
  const lanSet = `{ ${lans.map((l) => `"${l}"`).join(', ')} }`;
  const udp = cfg.bootUdpPorts.length > 0 ? `udp dport ${ports(cfg.bootUdpPorts, 'boot UDP')}` : '';
  const tcp = cfg.bootTcpPorts.length > 0 ? `tcp dport ${ports(cfg.bootTcpPorts, 'boot TCP')}` : '';
  // Every accept below names the LAN address, which also makes it IPv4 only (IPv6 falls to drop).
  const toGateway = `ip daddr ${lanIp}`;
  const dhcpAccept = `\t\tip daddr { 255.255.255.255, ${lanIp} } udp sport 68 udp dport 67 accept`;
  const bootRules: string[] = [];
  for (const who of ['iifname . ether saddr @pending', 'iifname . ether saddr . ip saddr @active']) {
    for (const service of [udp, tcp]) if (service) bootRules.push(`\t\t${who} ${toGateway} ${service} accept`);
    // Answers to flows the gateway opened: TFTP sends the file from a port of its own (RFC 1350 §4).
    bootRules.push(`\t\t${who} ${toGateway} ct state established,related accept`);
  }
  return [
    `table inet ${table}`,
    `delete table inet ${table}`,
    `table inet ${table} {`,
    set('active', 'ifname . ether_addr . ipv4_addr', active),
    set('active_ip', 'ipv4_addr', [...activeIp]),
    set('pending', 'ifname . ether_addr', pending),
    set('blocked', 'ifname . ether_addr', blocked),
    '\tchain input {',
    '\t\ttype filter hook input priority filter; policy accept;',
    // DHCP is served on the LAN only (node cannot bind a socket to one device).
    `\t\tiifname != ${lanSet} udp dport 67 drop`,
    `\t\tiifname != ${lanSet} accept`,
    ...(cfg.onboardingRelayPort !== undefined ? [`\t\t${toGateway} tcp dport ${ports([cfg.onboardingRelayPort], 'onboarding relay')} accept`] : []),
    // With the relay, DHCP reaches the server from Blocked MACs too: it leases to an unknown-MAC
    // Blocked device (so it keeps reaching the relay) and refuses the rest (onboarding-relay/dhcp-admission.ts).
    ...(cfg.onboardingRelayPort !== undefined ? [dhcpAccept] : []),
    '\t\tiifname . ether saddr @blocked drop',
    // DHCP: broadcast from clients without an address, unicast renewals to the server identifier.
    dhcpAccept,
    ...bootRules,
    `\t\tiifname . ether saddr . ip saddr @active ${toGateway} icmp type echo-request accept`,
    '\t\tdrop',
    '\t}',
    '\tchain forward {',
    '\t\ttype filter hook forward priority filter; policy accept;',
    `\t\tiifname ${lanSet} oifname "${uplink}" iifname . ether saddr . ip saddr @active accept`,
    `\t\tiifname ${lanSet} drop`,
    `\t\tiifname "${uplink}" oifname ${lanSet} ip daddr @active_ip ct state established,related accept`,
    `\t\toifname ${lanSet} drop`,
    '\t}',
    '\tchain postrouting {',
    '\t\ttype nat hook postrouting priority srcnat; policy accept;',
    `\t\toifname "${uplink}" ip saddr @active_ip masquerade`,
    '\t}',
    '}',
    '',
  ].join('\n');
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program (no shell) with `stdin` as its input; resolves with its exit status and output. */
export type CommandRunner = (cmd: string, args: string[], stdin?: string) => Promise<CommandResult>;

/** The real runner: a child process. A command killed by a signal resolves with code -1. */
export function runCommand(cmd: string, args: string[], stdin?: string): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args);
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => {
      stdout += d;
    });
    p.stderr.on('data', (d) => {
      stderr += d;
    });
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    // A child that exits before reading (a failing nft) must not crash the daemon with EPIPE.
    p.stdin.on('error', () => undefined);
    p.stdin.end(stdin ?? '');
  });
}

/** Starts `nft <args>` with piped stdio (tests start it inside a namespace). */
export type NftSpawner = (args: string[]) => ChildProcessWithoutNullStreams;

export const spawnNft: NftSpawner = (args) => spawn('nft', args);

/**
 * One long-lived `nft -i`: a change is one input line (commands joined by `;`), which nft runs as
 * one transaction, followed by a marker command that fails with a known message on stderr — once
 * the marker's error is in, everything nft printed before it is what the change said. This saves
 * the fork and exec of `nft` per change, which dominates its cost (nft itself does not read the
 * sets' elements to add or delete one, so its own work does not grow with the table).
 */
export class NftSession {
  private child: ChildProcessWithoutNullStreams | undefined;
  private stderr = '';
  private seq = 0;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly start: NftSpawner,
    private readonly timeoutMs = 10_000,
  ) {}

  /** Runs `commands` as one transaction; resolves with nft's complaint ('' when it took them). */
  run(commands: string[]): Promise<string> {
    const line = commands.join('; ');
    if (/[\r\n]/.test(line)) return Promise.reject(new EnforcerError('bad_name', 'an nft command contains a line break'));
    const result = this.chain.then(() => this.runNow(line));
    this.chain = result.catch(() => undefined);
    return result;
  }

  private async runNow(line: string): Promise<string> {
    const child = this.ensure();
    const marker = `list table inet tips_sync_${process.pid}_${++this.seq}`;
    child.stdin.write(`${line}\n${marker}\n`);
    const deadline = Date.now() + this.timeoutMs;
    // The marker's complaint: "Error: …", its echo, and a line of carets under the table name.
    const echo = new RegExp(`\\n${marker}\\n[ ^~]*\\n`);
    for (;;) {
      const m = echo.exec(this.stderr);
      if (m) {
        const errorLine = this.stderr.lastIndexOf('Error:', m.index);
        const said = this.stderr.slice(0, Math.max(0, errorLine)).trim();
        this.stderr = this.stderr.slice(m.index + m[0].length);
        return said;
      }
      if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
        this.close();
        throw new EnforcerError('apply_failed', `nft -i ${child.exitCode !== null || child.signalCode !== null ? 'exited' : 'did not answer'}: ${this.stderr.trim().slice(0, 300)}`);
      }
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  private ensure(): ChildProcessWithoutNullStreams {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) return this.child;
    const child = this.start(['-i']);
    this.stderr = '';
    child.stderr.on('data', (d) => {
      this.stderr += d;
    });
    child.stdout.resume();
    child.stdin.on('error', () => undefined);
    child.on('error', () => undefined);
    // The session never keeps the daemon alive; on exit its stdin closes and nft ends.
    child.unref();
    for (const s of [child.stdin, child.stdout, child.stderr] as unknown as { unref?: () => void }[]) s.unref?.();
    this.child = child;
    return child;
  }

  close(): void {
    this.child?.kill();
    this.child = undefined;
  }
}

/**
 * Linux adapter: nftables + conntrack in the gateway's network namespace. `exec` runs the programs
 * (tests pass one that records calls, or one that enters a throw-away namespace).
 */
export class NftEnforcer implements Enforcer {
  private readonly session: NftSession | undefined;

  /** With `interactive`, element changes go through one long-lived `nft -i` (NftSession) instead of an `nft -f -` each. */
  constructor(
    private readonly cfg: RuleConfig,
    private readonly exec: CommandRunner = runCommand,
    opts: { interactive?: NftSpawner } = {},
  ) {
    this.session = opts.interactive ? new NftSession(opts.interactive) : undefined;
  }

  /** What the kernel holds; undefined until a full render succeeded, and again after any failed load. */
  private enforced: EnforcedElements | undefined;

  async apply(rows: InterfaceRow[]): Promise<void> {
    const script = renderRuleset(this.cfg, rows);
    this.enforced = undefined;
    const r = await this.exec('nft', ['-f', '-'], script);
    if (r.code !== 0) throw new EnforcerError('apply_failed', `nft -f failed (exit ${r.code}): ${r.stderr.trim().slice(0, 500)}`);
    this.enforced = EnforcedElements.of(rows);
  }

  async change(changes: RowChange[]): Promise<void> {
    if (!this.enforced) throw new EnforcerError('apply_failed', 'no complete rule set is known to be in force: render the whole table');
    const enforced = this.enforced;
    const { commands, commit } = enforced.diff(checkName(this.cfg.table, 'table'), changes);
    if (commands.length === 0) return;
    // The kernel may no longer match what we loaded (a failed load, someone else's nft): until the
    // next full render, no further change is computed from this state.
    this.enforced = undefined;
    if (this.session) {
      const said = await this.session.run(commands);
      if (said !== '') throw new EnforcerError('apply_failed', `nft -i (element change) refused it: ${said.slice(0, 500)}`);
    } else {
      const r = await this.exec('nft', ['-f', '-'], `${commands.join('\n')}\n`);
      if (r.code !== 0) throw new EnforcerError('apply_failed', `nft -f (element change) failed (exit ${r.code}): ${r.stderr.trim().slice(0, 500)}`);
    }
    commit();
    this.enforced = enforced;
  }

  /** Ends the `nft -i` session, if any (the rules stay in the kernel). */
  close(): void {
    this.session?.close();
  }

  async flushConnections(ip: string): Promise<void> {
    checkIpv4(ip, 'connection address');
    // Exit status 1 with "0 flow entries" just means there was nothing to delete.
    for (const dir of ['-s', '-d']) {
      const r = await this.exec('conntrack', ['-D', dir, ip]);
      if (r.code !== 0 && !/0 flow entries/.test(r.stderr)) {
        throw new EnforcerError('apply_failed', `conntrack -D ${dir} ${ip} failed: ${r.stderr.trim().slice(0, 300)}`);
      }
    }
  }

  async sampleConnections(): Promise<string> {
    const r = await this.exec('conntrack', ['-L', '-o', 'extended']);
    if (r.code !== 0) throw new EnforcerError('apply_failed', `conntrack -L failed: ${r.stderr.trim().slice(0, 300)}`);
    return r.stdout;
  }
}
