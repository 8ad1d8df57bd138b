/**
 * bench/gateway-admission: the cost of one admission change (Pending → Active, Active → Blocked, …)
 * in the gateway's nftables table of 100 / 1,000 / 10,000 interfaces (issue 13, "gateway at scale":
 * goal p99 ≤ 5 ms at 10,000 rows, the same at every size).
 *
 *   node --import tsx bench/gateway-admission.ts     # TIPS_BENCH_CHANGES (300) changes per size,
 *                                                    # TIPS_BENCH_FULL (20) whole renders per size
 *
 * A throw-away network namespace (@tips/testbed); the measuring process runs inside it (`ip netns
 * exec … node`) so each change is exactly what tips-gateway does: NftEnforcer.change sending one
 * transaction of element deletions/additions to its long-lived `nft -i` session. For comparison in
 * the same run: the same changes each through its own `nft -f -` process. Each change touches one
 * interface, cycling Pending → Active → Blocked → forgotten → Pending, spread over the table.
 * In the same run, for the curve it replaces: the whole-table render (NftEnforcer.apply), which is
 * what every change cost before.
 */
import { spawn } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { Topology } from '@tips/testbed';
import { NftEnforcer, type RuleConfig, runCommand, spawnNft } from '../apps/gateway/src/enforcer/nft.ts';
import type { InterfaceRow } from '../apps/gateway/src/table/table.ts';
import { interfaceRow, macOf } from '../apps/gateway/src/enforcer/rows.fixture.ts';

const SIZES = [100, 1_000, 10_000];
const CHANGES = Number(process.env.TIPS_BENCH_CHANGES ?? 300);
const FULL = Number(process.env.TIPS_BENCH_FULL ?? 20);
const CFG: RuleConfig = { table: 'tips_bench', lan: ['br0'], lanAddress: '10.80.255.254', uplink: 'up0', bootUdpPorts: [69], bootTcpPorts: [8080] };

const row = (i: number, state: InterfaceRow['state'], ip: string | null): InterfaceRow => interfaceRow(macOf(i), state, ip);
const ipOf = (i: number) => `10.80.${(i >> 8) & 255}.${i & 255}`;

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
const ms = (ns: bigint) => Number(ns) / 1e6;

interface Figures {
  rows: number;
  change: { n: number; p50: number; p99: number; max: number };
  /** The same changes, each through its own `nft -f -` process (the enforcer without a session). */
  spawned: { n: number; p50: number; p99: number };
  full: { n: number; p50: number; p99: number };
}

/** Inside the namespace: load `rows`, then time single-interface changes and whole renders. */
/** Rows by index; undefined once forgotten (the master's clear). */
type Table = (InterfaceRow | undefined)[];

async function timeChanges(enforcer: NftEnforcer, rows: Table, size: number, count: number): Promise<number[]> {
  const changes: number[] = [];
  for (let k = 0; k < count; k++) {
    // Interfaces spread over the table; each step moves one along Pending → Active → Blocked → forgotten → Pending.
    const i = (k * 7919) % size;
    const cur = rows[i];
    const after = cur === undefined ? row(i, 'pending', ipOf(i)) : cur.state === 'pending' ? row(i, 'active', ipOf(i)) : cur.state === 'active' ? row(i, 'blocked', ipOf(i)) : undefined;
    const t0 = process.hrtime.bigint();
    await enforcer.change([{ mac: row(i, 'pending', null).mac, gatewayInterface: 'br0', row: after }]);
    changes.push(ms(process.hrtime.bigint() - t0));
    rows[i] = after;
  }
  return changes;
}

async function inner(size: number): Promise<Figures> {
  // As tips-gateway runs it: element changes through one `nft -i` session.
  const enforcer = new NftEnforcer(CFG, runCommand, { interactive: spawnNft });
  const states = ['pending', 'active', 'blocked'] as const;
  const rows: Table = Array.from({ length: size }, (_, i) => row(i, states[i % 3]!, ipOf(i)));
  const present = () => rows.filter((r): r is InterfaceRow => r !== undefined);
  await enforcer.apply(present());
  const changes = await timeChanges(enforcer, rows, size, CHANGES);
  const plain = new NftEnforcer(CFG);
  await plain.apply(present());
  const spawned = await timeChanges(plain, rows, size, Math.min(CHANGES, 100));
  const full: number[] = [];
  for (let k = 0; k < FULL; k++) {
    const t0 = process.hrtime.bigint();
    await enforcer.apply(present());
    full.push(ms(process.hrtime.bigint() - t0));
  }
  return {
    rows: size,
    change: { n: changes.length, p50: pct(changes, 50), p99: pct(changes, 99), max: Math.max(...changes) },
    spawned: { n: spawned.length, p50: pct(spawned, 50), p99: pct(spawned, 99) },
    full: { n: full.length, p50: pct(full, 50), p99: pct(full, 99) },
  };
}

async function outer(): Promise<void> {
  const topo = await Topology.create('gwadm');
  const results: Figures[] = [];
  try {
    for (const size of SIZES) {
      const ns = await topo.namespace(`gw${size}`);
      const out = await new Promise<string>((resolve, reject) => {
        const p = spawn('ip', ['netns', 'exec', ns.name, process.execPath, '--import', 'tsx', import.meta.filename, '--inner', String(size)], { stdio: ['ignore', 'pipe', 'inherit'] });
        let s = '';
        p.stdout.on('data', (d) => {
          s += d;
        });
        p.on('error', reject);
        p.on('close', (code) => (code === 0 ? resolve(s) : reject(new Error(`inner run for ${size} rows exited ${code}`))));
      });
      results.push(JSON.parse(out) as Figures);
      await ns.execOk('nft', ['delete', 'table', 'inet', CFG.table]);
    }
  } finally {
    await topo.destroy();
  }
  const f = (x: number) => x.toFixed(2);
  console.log(`gateway-admission: ${CHANGES} single-interface changes and ${FULL} whole renders per size; ${cpus().length} cores, load ${loadavg().map((l) => l.toFixed(1)).join(' ')}, Node ${process.version}`);
  console.log('| rows | change p50 (nft -i) | change p99 (nft -i) | change max | change p50 / p99, one `nft -f` each | whole render p50 / p99 |');
  console.log('|---|---|---|---|---|---|');
  for (const r of results) {
    console.log(`| ${r.rows} | ${f(r.change.p50)} ms | ${f(r.change.p99)} ms | ${f(r.change.max)} ms | ${f(r.spawned.p50)} / ${f(r.spawned.p99)} ms | ${f(r.full.p50)} / ${f(r.full.p99)} ms |`);
  }
  const big = results.at(-1)!;
  console.log(`goal p99 ≤ 5 ms at ${big.rows} rows: ${big.change.p99 <= 5 ? 'met' : 'NOT met'} (${f(big.change.p99)} ms); p99 at ${results[0]!.rows} rows: ${f(results[0]!.change.p99)} ms`);
}

const at = process.argv.indexOf('--inner');
if (at > 0) process.stdout.write(JSON.stringify(await inner(Number(process.argv[at + 1]))));
else await outer();
