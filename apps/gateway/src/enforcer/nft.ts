// nftables rendering (pure) and the Linux adapter. The whole table is rendered from the interface
// table and loaded with one `nft -f -` transaction (add/delete/define), so the kernel never sees a
// half-written policy. Unknown sources on the LAN may only talk DHCP; Pending may also reach the
// gateway's boot services; Active may leave through the uplink (masqueraded); Blocked nothing.
import { spawn } from 'node:child_process';
import type { InterfaceRow } from '../table/table.ts';
import { type Enforcer, EnforcerError } from './enforcer.ts';

export interface RuleConfig {
  /** nft table name (family inet). */
  table: string;
  /** The LAN interfaces where metals live. */
  lan: string[];
  uplink: string;
  /** Gateway boot/registration services reachable by Pending and Active metals. */
  bootUdpPorts: number[];
  bootTcpPorts: number[];
}

const NAME = /^[A-Za-z0-9_.-]{1,15}$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

function checkName(n: string, what: string): string {
  if (!NAME.test(n)) throw new EnforcerError('bad_name', `${what} "${n}" is not a valid interface/table name`);
  return n;
}

function set(name: string, type: string, elements: string[]): string {
  const body = elements.length > 0 ? `\n\t\telements = { ${elements.join(', ')} }` : '';
  return `\tset ${name} {\n\t\ttype ${type}${body}\n\t}`;
}

function ports(p: number[]): string {
  return p.length === 1 ? String(p[0]) : `{ ${p.join(', ')} }`;
}

/** Renders the complete nft script for the rows. Pure; validates every name and address it embeds. */
export function renderRuleset(cfg: RuleConfig, rows: InterfaceRow[]): string {
  const table = checkName(cfg.table, 'table');
  const uplink = checkName(cfg.uplink, 'uplink');
  const lans = cfg.lan.map((l) => checkName(l, 'lan'));
  if (lans.length === 0) throw new EnforcerError('bad_name', 'at least one LAN interface is needed');
  const active: string[] = [];
  const activeIp = new Set<string>();
  const pending: string[] = [];
  const blocked: string[] = [];
  for (const r of rows) {
    if (!MAC.test(r.mac)) throw new EnforcerError('bad_name', `row MAC "${r.mac}" is not lower-case colon form`);
    checkName(r.gatewayInterface, 'gateway interface');
    const ifmac = `"${r.gatewayInterface}" . ${r.mac}`;
    if (r.state === 'blocked') blocked.push(ifmac);
    else if (r.state === 'pending') pending.push(ifmac);
    else if (r.ip !== null) {
      if (!IPV4.test(r.ip)) throw new EnforcerError('bad_name', `row address "${r.ip}" is not IPv4`);
      active.push(`${ifmac} . ${r.ip}`);
      activeIp.add(r.ip);
    }
  }
  const lanSet = `{ ${lans.map((l) => `"${l}"`).join(', ')} }`;
  const bootRules: string[] = [];
  for (const who of ['iifname . ether saddr @pending', 'iifname . ether saddr . ip saddr @active']) {
    if (cfg.bootUdpPorts.length > 0) bootRules.push(`\t\t${who} udp dport ${ports(cfg.bootUdpPorts)} accept`);
    if (cfg.bootTcpPorts.length > 0) bootRules.push(`\t\t${who} tcp dport ${ports(cfg.bootTcpPorts)} accept`);
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
    '\t\tiifname . ether saddr @blocked drop',
    '\t\tudp sport 68 udp dport 67 accept',
    ...bootRules,
    '\t\tiifname . ether saddr . ip saddr @active icmp type echo-request accept',
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

function run(cmd: string, args: string[], stdin?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout?.on('data', (d) => {
      stdout += d;
    });
    p.stderr?.on('data', (d) => {
      stderr += d;
    });
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    if (p.stdin) {
      // A child that exits before reading (a failing nft) must not crash the daemon with EPIPE.
      p.stdin.on('error', () => undefined);
      p.stdin.end(stdin);
    }
  });
}

/** Linux adapter: nftables + conntrack in the gateway's network namespace. */
export class NftEnforcer implements Enforcer {
  constructor(private readonly cfg: RuleConfig) {}

  async apply(rows: InterfaceRow[]): Promise<void> {
    const script = renderRuleset(this.cfg, rows);
    const r = await run('nft', ['-f', '-'], script);
    if (r.code !== 0) throw new EnforcerError('apply_failed', `nft -f failed (exit ${r.code}): ${r.stderr.trim().slice(0, 500)}`);
  }

  async flushConnections(ip: string): Promise<void> {
    if (!IPV4.test(ip)) throw new EnforcerError('bad_name', `"${ip}" is not IPv4`);
    // Exit status 1 with "0 flow entries" just means there was nothing to delete.
    for (const dir of ['-s', '-d']) {
      const r = await run('conntrack', ['-D', dir, ip]);
      if (r.code !== 0 && !/0 flow entries/.test(r.stderr)) {
        throw new EnforcerError('apply_failed', `conntrack -D ${dir} ${ip} failed: ${r.stderr.trim().slice(0, 300)}`);
      }
    }
  }

  async sampleConnections(): Promise<string> {
    const r = await run('conntrack', ['-L', '-o', 'extended']);
    if (r.code !== 0) throw new EnforcerError('apply_failed', `conntrack -L failed: ${r.stderr.trim().slice(0, 300)}`);
    return r.stdout;
  }
}
