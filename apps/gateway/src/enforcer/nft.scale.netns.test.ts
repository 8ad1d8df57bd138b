// T2 gateway at scale: with 10,000 interfaces in the table, admitting, blocking, expiring or
// forgetting one changes that interface's set elements and nothing else. Proven on the kernel's
// own record (real nft in a throw-away namespace): `nft monitor` shows only those element events,
// every rule and set keeps its handle, and every other element is still there. Needs root.
import { spawn } from 'node:child_process';
import { type Namespace, type NsProcess, Topology } from '@tips/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NftEnforcer, type RuleConfig, runCommand } from './nft.ts';
import { interfaceRow, macOf } from './rows.fixture.ts';

const TABLE = 'tips_scale';
const CFG: RuleConfig = { table: TABLE, lan: ['br0'], lanAddress: '10.80.255.254', uplink: 'up0', bootUdpPorts: [69], bootTcpPorts: [8080] };
const N = 10_000;

const row = interfaceRow;
const ipOf = (i: number) => `10.80.${(i >> 8) & 255}.${i & 255}`;
/** A third each: Active (with its address), Pending, Blocked. */
const ROWS = Array.from({ length: N }, (_, i) => row(macOf(i), (['active', 'pending', 'blocked'] as const)[i % 3]!, ipOf(i)));

interface Snapshot {
  /** The table's handle: a recreated table gets a new one (rule and set handles count from 1 in each table). */
  table: number;
  /** chain → rule handles in order. */
  rules: Record<string, number[]>;
  /** set → handle. */
  setHandles: Record<string, number>;
  /** set → its elements as `a . b . c`. */
  elements: Record<string, Set<string>>;
}

let topo: Topology;
let gw: Namespace;
let enforcer: NftEnforcer;

async function snapshot(): Promise<Snapshot> {
  const r = await gw.execOk('nft', ['-a', '-j', 'list', 'table', 'inet', TABLE]);
  const items = (JSON.parse(r.stdout) as { nftables: Record<string, { chain?: string; name?: string; handle: number; elem?: unknown[] }>[] }).nftables;
  const s: Snapshot = { table: -1, rules: {}, setHandles: {}, elements: {} };
  for (const it of items) {
    if (it.table) s.table = it.table.handle;
    if (it.rule) s.rules[it.rule.chain!] = [...(s.rules[it.rule.chain!] ?? []), it.rule.handle];
    if (it.set) {
      s.setHandles[it.set.name!] = it.set.handle;
      s.elements[it.set.name!] = new Set((it.set.elem ?? []).map((e) => (typeof e === 'string' ? e : (e as { concat: string[] }).concat.join(' . '))));
    }
  }
  return s;
}

/**
 * `nft monitor` in the namespace, started while the namespace is still empty (with 10,000 elements
 * loaded, its start-up dump can take longer than a loaded machine allows). Line-buffered: nft
 * writes to a pipe through stdio, which would otherwise hold events back.
 */
async function startMonitor(): Promise<NsProcess> {
  const mon = gw.spawn('stdbuf', ['-oL', 'nft', 'monitor'], { label: 'nft monitor' });
  for (let i = 0; !/add table inet tips_ready/.test(mon.output); i++) {
    await gw.execOk('nft', ['add', 'table', 'inet', 'tips_ready']);
    await gw.execOk('nft', ['delete', 'table', 'inet', 'tips_ready']);
    await new Promise((r) => setTimeout(r, 100));
    if (i > 300) throw new Error(`nft monitor reports nothing (running: ${mon.running}): ${mon.output}`);
  }
  return mon;
}

let windows = 0;
/** Runs `f` and returns the events the monitor printed meanwhile, in order (bracketed by sentinel tables). */
async function monitored(mon: NsProcess, f: () => Promise<void>): Promise<string[]> {
  const n = ++windows;
  const mark = async (name: string) => {
    await gw.execOk('nft', ['add', 'table', 'inet', name]);
    await gw.execOk('nft', ['delete', 'table', 'inet', name]);
    await mon.waitFor(new RegExp(`delete table inet ${name}\\n`), 60_000);
  };
  await mark(`tips_from${n}`);
  await f();
  await mark(`tips_to${n}`);
  const out = mon.output;
  const from = out.indexOf('\n', out.indexOf(`delete table inet tips_from${n}`));
  return out
    .slice(from, out.indexOf(`add table inet tips_to${n}`))
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

// Both ways of sending a change: a long-lived `nft -i` (what tips-gateway uses) and an `nft -f -` per change.
describe.each(['nft -i session', 'nft -f per change'])('T2 T7 gateway at scale: one interface changes element by element in a table of 10,000 (real nft, %s)', (mode) => {
  beforeAll(async () => {
    topo = await Topology.create(mode === 'nft -i session' ? 'nftsi' : 'nftsf');
    gw = await topo.namespace('gw');
    enforcer = new NftEnforcer(
      CFG,
      (cmd, args, stdin) => runCommand('ip', ['netns', 'exec', gw.name, cmd, ...args], stdin),
      mode === 'nft -i session' ? { interactive: (args) => spawn('ip', ['netns', 'exec', gw.name, 'nft', ...args]) } : {},
    );
  }, 120_000);
  afterAll(async () => {
    enforcer?.close();
    await topo?.destroy();
  });

  it('admitting, blocking, expiring and forgetting one interface each rewrite nothing but its own elements; a full render, by contrast, replaces everything', async () => {
    const mon = await startMonitor();
    await enforcer.apply(ROWS);
    const before = await snapshot();
    expect([before.elements.active!.size, before.elements.pending!.size, before.elements.blocked!.size, before.elements.active_ip!.size]).toEqual([3334, 3333, 3333, 3334]);

    const admitted = 4; // Pending → Active
    const blocked = 3; // Active → Blocked
    const expired = 6; // Active, lease gone: no address, no grant
    const forgotten = 5; // Blocked, cleared by the master
    const events = await monitored(mon, async () => {
      await enforcer.change([{ mac: macOf(admitted), gatewayInterface: 'br0', row: row(macOf(admitted), 'active', ipOf(admitted)) }]);
      await enforcer.change([{ mac: macOf(blocked), gatewayInterface: 'br0', row: row(macOf(blocked), 'blocked', ipOf(blocked)) }]);
      await enforcer.change([{ mac: macOf(expired), gatewayInterface: 'br0', row: row(macOf(expired), 'active', null) }]);
      await enforcer.change([{ mac: macOf(forgotten), gatewayInterface: 'br0', row: undefined }]);
    });
    const ifmac = (i: number) => `"br0" . ${macOf(i)}`;
    const ev = (verb: string, set: string, e: string) => `${verb} element inet ${TABLE} ${set} { ${e} }`;
    expect(events).toEqual([
      ev('delete', 'pending', ifmac(admitted)),
      ev('add', 'active', `${ifmac(admitted)} . ${ipOf(admitted)}`),
      ev('add', 'active_ip', ipOf(admitted)),
      ev('delete', 'active', `${ifmac(blocked)} . ${ipOf(blocked)}`),
      ev('delete', 'active_ip', ipOf(blocked)),
      ev('add', 'blocked', ifmac(blocked)),
      ev('delete', 'active', `${ifmac(expired)} . ${ipOf(expired)}`),
      ev('delete', 'active_ip', ipOf(expired)),
      ev('delete', 'blocked', ifmac(forgotten)),
    ]);

    // The kernel's table: same rules and sets (handles), and every other element where it was.
    const after = await snapshot();
    expect(after.table).toBe(before.table);
    expect(after.rules).toEqual(before.rules);
    expect(after.setHandles).toEqual(before.setHandles);
    const plain = (i: number) => `br0 . ${macOf(i)}`;
    const expected: Record<string, Set<string>> = Object.fromEntries(Object.entries(before.elements).map(([k, v]) => [k, new Set(v)]));
    expected.pending!.delete(plain(admitted));
    expected.active!.add(`${plain(admitted)} . ${ipOf(admitted)}`);
    expected.active_ip!.add(ipOf(admitted));
    expected.active!.delete(`${plain(blocked)} . ${ipOf(blocked)}`);
    expected.active_ip!.delete(ipOf(blocked));
    expected.blocked!.add(plain(blocked));
    expected.active!.delete(`${plain(expired)} . ${ipOf(expired)}`);
    expected.active_ip!.delete(ipOf(expired));
    expected.blocked!.delete(plain(forgotten));
    expect(after.elements).toEqual(expected);
    expect(after.elements.active!.size + after.elements.pending!.size + after.elements.blocked!.size).toBe(N - 2);

    await mon.stop();
    // What the checks above would see if a change re-rendered the table: the table itself is new.
    await enforcer.apply(ROWS);
    expect((await snapshot()).table).not.toBe(before.table);
  }, 300_000);

  it('a change the kernel refuses (an element removed behind its back) changes nothing, and the enforcer then asks for a full render', async () => {
    await enforcer.apply(ROWS);
    const victim = 7; // Pending
    await gw.execOk('nft', ['delete', 'element', 'inet', TABLE, 'pending', `{ "br0" . ${macOf(victim)} }`]);
    const before = await snapshot();
    // One transaction: admitting 10 (Pending) would succeed on its own, but shares it with the refused deletion.
    const err = await enforcer
      .change([
        { mac: macOf(10), gatewayInterface: 'br0', row: row(macOf(10), 'active', ipOf(10)) },
        { mac: macOf(victim), gatewayInterface: 'br0', row: row(macOf(victim), 'active', ipOf(victim)) },
      ])
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'apply_failed', message: expect.stringMatching(/element change/) });
    expect(await snapshot()).toEqual(before);
    await expect(enforcer.change([{ mac: macOf(10), gatewayInterface: 'br0', row: row(macOf(10), 'blocked', null) }])).rejects.toMatchObject({
      message: expect.stringMatching(/render the whole table/),
    });
    await enforcer.apply(ROWS);
    expect((await snapshot()).elements.pending!.has(`br0 . ${macOf(victim)}`)).toBe(true);
  }, 300_000);
});
