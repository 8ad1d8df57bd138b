// The renderer's guards, the rule set as nft parses and lists it (loaded into a throw-away
// namespace), and the NftEnforcer adapter around `nft`/`conntrack` with a recording runner. What the
// rules let through is proven with real traffic in nft.netns.test.ts.
import { type Namespace, Topology } from '@tips/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InterfaceRow } from '../table/table.ts';
import { BOOT_PORTS, EnforcerError } from './enforcer.ts';
import { type CommandResult, NftEnforcer, type RuleConfig, renderRuleset, runCommand } from './nft.ts';
import { interfaceRow } from './rows.fixture.ts';

const CFG: RuleConfig = { table: 'tips_gw', lan: ['br0'], lanAddress: '10.77.0.1', uplink: 'up0', bootUdpPorts: [69], bootTcpPorts: [8080] };
const row = interfaceRow;
const ROWS = [row('02:00:00:00:00:01', 'active', '10.77.0.100'), row('02:00:00:00:00:02', 'pending', '10.77.0.101'), row('02:00:00:00:00:03', 'blocked', '10.77.0.102')];

function refused(f: () => unknown, code: EnforcerError['code'], message: RegExp): void {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(EnforcerError);
  expect(err).toMatchObject({ name: 'EnforcerError', code, message: expect.stringMatching(message) });
}

describe('T7 the renderer refuses anything that could inject rules or widen them', () => {
  it('interface and table names: 1–15 of [A-Za-z0-9_.-], whole string', () => {
    for (const ok of ['Aa0_.-', 'a', 'abcdefghijklmno']) {
      expect(() => renderRuleset({ ...CFG, table: ok, uplink: ok, lan: [ok] }, [row('02:00:00:00:00:01', 'pending', null, ok)])).not.toThrow();
    }
    for (const bad of ['', 'abcdefghijklmnop', 'up0"; flush ruleset', 'x y', '"up0', 'up0"']) {
      refused(() => renderRuleset({ ...CFG, table: bad }, []), 'bad_name', /^table ".*" is not a valid interface\/table name$/);
      refused(() => renderRuleset({ ...CFG, uplink: bad }, []), 'bad_name', /^uplink ".*" is not a valid interface\/table name$/);
      refused(() => renderRuleset({ ...CFG, lan: ['br0', bad] }, []), 'bad_name', /^lan ".*" is not a valid interface\/table name$/);
      refused(() => renderRuleset(CFG, [row('02:00:00:00:00:01', 'pending', null, bad)]), 'bad_name', /^gateway interface ".*" is not a valid/);
    }
    refused(() => renderRuleset({ ...CFG, lan: [] }, []), 'bad_name', /^at least one LAN interface is needed$/);
  });

  it('MACs: six lower-case hex pairs with colons, whole string', () => {
    expect(() => renderRuleset(CFG, [row('0a:9f:b0:c1:d2:e3', 'blocked', null)])).not.toThrow();
    for (const bad of ['02:00:00:00:00:01 } ', 'x02:00:00:00:00:01', '02:00:00:00:00:01x', '02:00:00:00:00:0A', '02:00:00:00:00', '02:00:00:00:00:01:02', '02-00-00-00-00-01', '2:00:00:00:00:01']) {
      refused(() => renderRuleset(CFG, [row(bad, 'pending', null)]), 'bad_name', /^row MAC ".*" is not lower-case colon form$/);
    }
  });

  it('addresses: dotted quad, whole string — the LAN address and an Active row address', () => {
    for (const ok of ['1.2.3.4', '100.200.255.254']) {
      expect(() => renderRuleset({ ...CFG, lanAddress: ok }, [row('02:00:00:00:00:01', 'active', ok)])).not.toThrow();
    }
    for (const bad of ['10.0.0.1 }', 'x10.0.0.1', '10.0.0.1x', '1000.0.0.1', '10.0.0.1000', '10.0.0', '10.0.0.1.1', '10x0x0x1', 'a.b.c.d', '']) {
      refused(() => renderRuleset({ ...CFG, lanAddress: bad }, []), 'bad_name', /^LAN address ".*" is not IPv4$/);
      refused(() => renderRuleset(CFG, [row('02:00:00:00:00:01', 'active', bad)]), 'bad_name', /^row address ".*" is not IPv4$/);
    }
  });

  it('boot ports: integers 1..65535', () => {
    expect(() => renderRuleset({ ...CFG, bootUdpPorts: [1, 65535], bootTcpPorts: [1, 65535] }, [])).not.toThrow();
    for (const bad of [0, 65536, 80.5, Number.NaN, -1]) {
      refused(() => renderRuleset({ ...CFG, bootUdpPorts: [69, bad] }, []), 'bad_port', /^boot UDP port .* is not 1\.\.65535$/);
      refused(() => renderRuleset({ ...CFG, bootTcpPorts: [bad] }, []), 'bad_port', /^boot TCP port .* is not 1\.\.65535$/);
    }
  });

  it('names the boot services in one place: TFTP 69/udp and HTTP 8080/tcp by default', () => {
    expect(BOOT_PORTS).toEqual({ tftpUdp: 69, httpTcp: 8080 });
  });
});

// ---- the rule set as nft sees it -------------------------------------------------------------

type Expr = Record<string, unknown>;
interface ListedRule {
  chain: string;
  expr: Expr[];
}
interface Listed {
  chains: Record<string, { type?: string; hook?: string; prio?: number; policy?: string }>;
  sets: Record<string, string[]>;
  rules: ListedRule[];
}

let topo: Topology;
let ns: Namespace;

/** Loads the script with `nft -f` into a fresh namespace's kernel and parses `nft -j list table`. */
async function load(cfg: RuleConfig, rows: InterfaceRow[]): Promise<Listed> {
  const script = renderRuleset(cfg, rows);
  await ns.execOk('nft', ['-c', '-f', '-'], { input: script });
  await ns.execOk('nft', ['-f', '-'], { input: script });
  const out = await ns.execOk('nft', ['-j', 'list', 'table', 'inet', cfg.table]);
  await ns.execOk('nft', ['delete', 'table', 'inet', cfg.table]);
  const items = (JSON.parse(out.stdout) as { nftables: Record<string, Expr>[] }).nftables;
  const listed: Listed = { chains: {}, sets: {}, rules: [] };
  for (const it of items) {
    if (it.chain) listed.chains[it.chain.name as string] = { type: it.chain.type as string, hook: it.chain.hook as string, prio: it.chain.prio as number, policy: it.chain.policy as string };
    if (it.set) {
      listed.sets[it.set.name as string] = ((it.set.elem as unknown[] | undefined) ?? []).map((e) => (typeof e === 'string' ? e : (e as { concat: string[] }).concat.join(' . ')));
    }
    if (it.rule) listed.rules.push({ chain: it.rule.chain as string, expr: it.rule.expr as Expr[] });
  }
  return listed;
}

const text = (r: ListedRule) => JSON.stringify(r.expr);
/** The values a rule matches a field against, e.g. dports of `tcp dport { 8080, 8081 }`. */
function matched(r: ListedRule, field: string): unknown[] {
  const out: unknown[] = [];
  for (const e of r.expr) {
    const m = e.match as { left?: Record<string, { field?: string; key?: string }>; right?: unknown } | undefined;
    const left = m?.left?.payload ?? m?.left?.meta ?? m?.left?.ct;
    if (left && (left.field === field || left.key === field)) out.push(m!.right);
  }
  return out;
}

describe('T7 T8 T11 the rendered rule set as nft loads and lists it', () => {
  beforeAll(async () => {
    topo = await Topology.create('nftu');
    ns = await topo.namespace('gw');
  });
  afterAll(async () => {
    await topo?.destroy();
  });

  it('loads as one table with input, forward and postrouting hooked, every set holding exactly its rows', async () => {
    const l = await load(CFG, [...ROWS, row('02:00:00:00:00:04', 'active', null), row('02:00:00:00:00:05', 'active', '10.77.0.100', 'br1')]);
    expect(l.chains).toEqual({
      input: { type: 'filter', hook: 'input', prio: 0, policy: 'accept' },
      forward: { type: 'filter', hook: 'forward', prio: 0, policy: 'accept' },
      postrouting: { type: 'nat', hook: 'postrouting', prio: 100, policy: 'accept' },
    });
    // An Active row without an address grants nothing; an address shared by two rows is listed once.
    expect(l.sets).toEqual({
      active: ['br0 . 02:00:00:00:00:01 . 10.77.0.100', 'br1 . 02:00:00:00:00:05 . 10.77.0.100'],
      active_ip: ['10.77.0.100'],
      pending: ['br0 . 02:00:00:00:00:02'],
      blocked: ['br0 . 02:00:00:00:00:03'],
    });
    // Every chain ends in drop for the LAN; the input chain's last word is an unconditional drop.
    const input = l.rules.filter((r) => r.chain === 'input');
    expect(input.at(-1)!.expr).toEqual([{ drop: null }]);
  });

  it('empty tables and no boot ports still load; Pending then keeps DHCP and answers only', async () => {
    const l = await load({ ...CFG, bootUdpPorts: [], bootTcpPorts: [] }, []);
    expect(l.sets).toEqual({ active: [], active_ip: [], pending: [], blocked: [] });
    const pending = l.rules.filter((r) => text(r).includes('"@pending"'));
    expect(pending).toHaveLength(1);
    expect(matched(pending[0]!, 'state')).toEqual([['established', 'related']]);
    expect(matched(pending[0]!, 'daddr')).toEqual(['10.77.0.1']);
  });

  it('issue 11: the onboarding relay port (and DHCP) is accepted at the LAN address only, before Blocked is dropped; without the relay no rule names it', async () => {
    const l = await load({ ...CFG, onboardingRelayPort: 8071 }, ROWS);
    const input = l.rules.filter((r) => r.chain === 'input');
    const relay = input.findIndex((r) => text(r).includes('8071'));
    const blockedDrop = input.findIndex((r) => text(r).includes('"@blocked"'));
    expect(relay).toBeGreaterThanOrEqual(0);
    expect(relay).toBeLessThan(blockedDrop);
    expect(matched(input[relay]!, 'daddr')).toEqual(['10.77.0.1']);
    expect(input[relay]!.expr.at(-1)).toEqual({ accept: null });
    expect((await load(CFG, ROWS)).rules.some((r) => text(r).includes('8071'))).toBe(false);
    // DHCP (udp 67) is accepted before the Blocked drop with the relay (the DHCP server decides who
    // gets a lease), after it without the relay (a Blocked MAC's DHCP never reaches the server, T6).
    const dhcp = (rules: typeof input) => rules.findIndex((r) => matched(r, 'dport').includes(67) && r.expr.at(-1)?.accept !== undefined);
    expect(dhcp(input)).toBeGreaterThanOrEqual(0);
    expect(dhcp(input)).toBeLessThan(blockedDrop);
    const off = (await load(CFG, ROWS)).rules.filter((r) => r.chain === 'input');
    expect(dhcp(off)).toBeGreaterThan(off.findIndex((r) => text(r).includes('"@blocked"')));
    expect(() => renderRuleset({ ...CFG, onboardingRelayPort: 70000 }, [])).toThrow(/onboarding relay port/);
  });

  it('several LAN interfaces and boot ports: each rule names all of them', async () => {
    const l = await load({ ...CFG, lan: ['br0', 'br1'], bootUdpPorts: [69, 4011], bootTcpPorts: [8080, 8443] }, ROWS);
    const lanRules = l.rules.filter((r) => matched(r, 'iifname').length > 0 || matched(r, 'oifname').length > 0);
    const lanSets = lanRules.flatMap((r) => [...matched(r, 'iifname'), ...matched(r, 'oifname')]).filter((v) => typeof v === 'object');
    expect(lanSets.length).toBeGreaterThanOrEqual(6);
    for (const s of lanSets) expect(s).toEqual({ set: ['br0', 'br1'] });
    for (const who of ['"@pending"', '"@active"']) {
      const ports = l.rules.filter((r) => text(r).includes(who)).map((r) => matched(r, 'dport'));
      expect(ports).toContainEqual([{ set: [69, 4011] }]);
      expect(ports).toContainEqual([{ set: [8080, 8443] }]);
    }
  });
});

// ---- the adapter -----------------------------------------------------------------------------

interface Call {
  cmd: string;
  args: string[];
  stdin: string | undefined;
}
/** A runner that records each call and answers from a script of results. */
function recorder(...results: CommandResult[]) {
  const calls: Call[] = [];
  const exec = async (cmd: string, args: string[], stdin?: string): Promise<CommandResult> => {
    calls.push({ cmd, args, stdin });
    return results.shift() ?? { code: 0, stdout: '', stderr: '' };
  };
  return { calls, exec };
}
const LONG = `  ${'e'.repeat(700)}  \n`;

describe('T7 T11 NftEnforcer drives nft and conntrack', () => {
  it('apply loads the whole rendered rule set with one `nft -f -` and reports a refusal with nft\'s words', async () => {
    const ok = recorder();
    await new NftEnforcer(CFG, ok.exec).apply(ROWS);
    expect(ok.calls).toEqual([{ cmd: 'nft', args: ['-f', '-'], stdin: renderRuleset(CFG, ROWS) }]);

    const bad = recorder({ code: 1, stdout: '', stderr: LONG });
    await expect(new NftEnforcer(CFG, bad.exec).apply(ROWS)).rejects.toMatchObject({ code: 'apply_failed', message: `nft -f failed (exit 1): ${'e'.repeat(500)}` });
  });

  it('apply renders before it runs anything: a bad row changes nothing', async () => {
    const r = recorder();
    await expect(new NftEnforcer(CFG, r.exec).apply([row('02:00:00:00:00:01', 'active', '10.0.0.1; flush ruleset')])).rejects.toMatchObject({ code: 'bad_name' });
    expect(r.calls).toEqual([]);
  });

  it('flushConnections deletes by source, then by destination; "0 flow entries" is not an error', async () => {
    const r = recorder({ code: 1, stdout: '', stderr: 'conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted.\n' }, { code: 0, stdout: '', stderr: '' });
    await new NftEnforcer(CFG, r.exec).flushConnections('10.77.0.100');
    expect(r.calls).toEqual([
      { cmd: 'conntrack', args: ['-D', '-s', '10.77.0.100'], stdin: undefined },
      { cmd: 'conntrack', args: ['-D', '-d', '10.77.0.100'], stdin: undefined },
    ]);
  });

  it('flushConnections reports any other failure and stops there; refuses a non-address without running', async () => {
    const first = recorder({ code: 1, stdout: '', stderr: LONG });
    await expect(new NftEnforcer(CFG, first.exec).flushConnections('10.77.0.100')).rejects.toMatchObject({
      code: 'apply_failed',
      message: `conntrack -D -s 10.77.0.100 failed: ${'e'.repeat(300)}`,
    });
    expect(first.calls).toHaveLength(1);
    const second = recorder({ code: 0, stdout: '', stderr: '' }, { code: 2, stdout: '', stderr: 'no permission' });
    await expect(new NftEnforcer(CFG, second.exec).flushConnections('10.77.0.100')).rejects.toMatchObject({
      code: 'apply_failed',
      message: 'conntrack -D -d 10.77.0.100 failed: no permission',
    });
    const none = recorder();
    for (const bad of ['10.77.0.100 -F', 'x10.77.0.100', '']) {
      await expect(new NftEnforcer(CFG, none.exec).flushConnections(bad)).rejects.toMatchObject({ code: 'bad_name', message: `connection address "${bad}" is not IPv4` });
    }
    expect(none.calls).toEqual([]);
  });

  it('sampleConnections returns conntrack\'s extended listing, or fails with its words', async () => {
    const r = recorder({ code: 0, stdout: 'ipv4 2 tcp 6 src=10.77.0.100\n', stderr: 'conntrack v1.4.7: 1 flow entries have been shown.\n' });
    expect(await new NftEnforcer(CFG, r.exec).sampleConnections()).toBe('ipv4 2 tcp 6 src=10.77.0.100\n');
    expect(r.calls).toEqual([{ cmd: 'conntrack', args: ['-L', '-o', 'extended'], stdin: undefined }]);
    const bad = recorder({ code: 1, stdout: 'partial', stderr: LONG });
    await expect(new NftEnforcer(CFG, bad.exec).sampleConnections()).rejects.toMatchObject({ code: 'apply_failed', message: `conntrack -L failed: ${'e'.repeat(300)}` });
  });

  it('runCommand: stdin in, exit status and both outputs back; no input is an empty stdin', async () => {
    expect(await runCommand('sh', ['-c', 'cat; echo oops >&2; exit 3'], 'table inet x\n')).toEqual({ code: 3, stdout: 'table inet x\n', stderr: 'oops\n' });
    expect(await runCommand('sh', ['-c', 'cat; echo done'])).toEqual({ code: 0, stdout: 'done\n', stderr: '' });
  });

  it('runCommand survives a child that exits without reading its input, and one killed by a signal', async () => {
    expect(await runCommand('true', [], 'x'.repeat(4 << 20))).toEqual({ code: 0, stdout: '', stderr: '' });
    expect((await runCommand('sh', ['-c', 'kill -9 $$'])).code).toBe(-1);
    await expect(runCommand('/nonexistent/nft', [])).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('T2 T7 NftEnforcer.change: one interface changes element by element, the rest of the table is not rendered', () => {
  const A = '02:00:00:00:00:01';
  const P = '02:00:00:00:00:02';
  const B = '02:00:00:00:00:03';
  const el = (verb: string, set: string, e: string) => `${verb} element inet tips_gw ${set} { ${e} }`;

  it('refuses before the first full render, and after a failed load, so the caller renders the whole table', async () => {
    const r = recorder();
    const e = new NftEnforcer(CFG, r.exec);
    await expect(e.change([{ mac: P, gatewayInterface: 'br0', row: row(P, 'active', '10.77.0.101') }])).rejects.toMatchObject({ code: 'apply_failed', message: /render the whole table/ });
    expect(r.calls).toEqual([]);

    const failing = recorder({ code: 0, stdout: '', stderr: '' }, { code: 1, stdout: '', stderr: 'Error: Could not process rule: No such file or directory' });
    const f = new NftEnforcer(CFG, failing.exec);
    await f.apply(ROWS);
    await expect(f.change([{ mac: P, gatewayInterface: 'br0', row: row(P, 'active', '10.77.0.101') }])).rejects.toMatchObject({ code: 'apply_failed', message: /element change.*No such file/ });
    await expect(f.change([{ mac: B, gatewayInterface: 'br0', row: undefined }])).rejects.toMatchObject({ message: /render the whole table/ });
    expect(failing.calls).toHaveLength(2);
    await f.apply(ROWS);
    await f.change([{ mac: B, gatewayInterface: 'br0', row: undefined }]);
    expect(failing.calls.at(-1)!.stdin).toBe(`${el('delete', 'blocked', `"br0" . ${B}`)}\n`);
  });

  it('admit, block, expire, forget: deletions then additions in one `nft -f -`, active_ip counted across rows', async () => {
    const r = recorder();
    const e = new NftEnforcer(CFG, r.exec);
    await e.apply(ROWS);
    r.calls.length = 0;
    // Pending is admitted.
    await e.change([{ mac: P, gatewayInterface: 'br0', row: row(P, 'active', '10.77.0.101') }]);
    // Active is blocked.
    await e.change([{ mac: A, gatewayInterface: 'br0', row: row(A, 'blocked', '10.77.0.100') }]);
    // The admitted one's lease expires (Active without an address: no grant), the blocked one is cleared.
    await e.change([
      { mac: P, gatewayInterface: 'br0', row: row(P, 'active', null) },
      { mac: B, gatewayInterface: 'br0', row: undefined },
    ]);
    // Nothing changed: nothing is run.
    await e.change([{ mac: A, gatewayInterface: 'br0', row: row(A, 'blocked', null) }]);
    expect(r.calls.map((c) => [c.cmd, ...c.args, c.stdin])).toEqual([
      ['nft', '-f', '-', `${el('delete', 'pending', `"br0" . ${P}`)}\n${el('add', 'active', `"br0" . ${P} . 10.77.0.101`)}\n${el('add', 'active_ip', '10.77.0.101')}\n`],
      ['nft', '-f', '-', `${el('delete', 'active', `"br0" . ${A} . 10.77.0.100`)}\n${el('delete', 'active_ip', '10.77.0.100')}\n${el('add', 'blocked', `"br0" . ${A}`)}\n`],
      ['nft', '-f', '-', `${el('delete', 'active', `"br0" . ${P} . 10.77.0.101`)}\n${el('delete', 'blocked', `"br0" . ${B}`)}\n${el('delete', 'active_ip', '10.77.0.101')}\n`],
    ]);
  });

  it('an address shared by two Active rows stays in active_ip until the last one goes; one moving between rows is not touched', async () => {
    const r = recorder();
    const e = new NftEnforcer(CFG, r.exec);
    const X = '02:00:00:00:00:0a';
    const Y = '02:00:00:00:00:0b';
    await e.apply([row(X, 'active', '10.77.0.50'), row(Y, 'active', '10.77.0.50', 'br1')]);
    r.calls.length = 0;
    await e.change([{ mac: X, gatewayInterface: 'br0', row: undefined }]);
    await e.change([
      { mac: Y, gatewayInterface: 'br1', row: undefined },
      { mac: X, gatewayInterface: 'br0', row: row(X, 'active', '10.77.0.50') },
    ]);
    await e.change([
      { mac: X, gatewayInterface: 'br0', row: row(X, 'pending', null) },
      { mac: X, gatewayInterface: 'br0', row: row(X, 'active', '10.77.0.50') },
    ]);
    expect(r.calls.map((c) => c.stdin)).toEqual([
      `${el('delete', 'active', `"br0" . ${X} . 10.77.0.50`)}\n`,
      `${el('delete', 'active', `"br1" . ${Y} . 10.77.0.50`)}\n${el('add', 'active', `"br0" . ${X} . 10.77.0.50`)}\n`,
    ]);
  });

  it('validates every changed row before running anything', async () => {
    const r = recorder();
    const e = new NftEnforcer(CFG, r.exec);
    await e.apply(ROWS);
    r.calls.length = 0;
    await expect(
      e.change([
        { mac: P, gatewayInterface: 'br0', row: row(P, 'active', '10.77.0.101') },
        { mac: A, gatewayInterface: 'br0', row: row(A, 'active', '10.0.0.1 } ; flush ruleset ; add element inet t s {') },
      ]),
    ).rejects.toMatchObject({ code: 'bad_name' });
    expect(r.calls).toEqual([]);
    // The state it vouches for is unchanged: the next change is computed from the loaded rows.
    await e.change([{ mac: P, gatewayInterface: 'br0', row: row(P, 'blocked', null) }]);
    expect(r.calls.map((c) => c.stdin)).toEqual([`${el('delete', 'pending', `"br0" . ${P}`)}\n${el('add', 'blocked', `"br0" . ${P}`)}\n`]);
  });
});
