/**
 * bench/dhcp: four-way DHCP exchanges per second, tips-gateway against Debian's Kea DHCPv4 server
 * (issue 13, goal ≥ 0.8× Kea with memfile leases), both measured in one run on the same veth.
 *
 *   node --import tsx bench/dhcp.ts      # TIPS_BENCH_CLIENTS (100), TIPS_BENCH_SECONDS (8),
 *                                        # TIPS_BENCH_RATES (300,600,1000,2000), TIPS_BENCH_ROUNDS (2)
 *   TIPS_BENCH_BASE=<dir>/gateway/main.js  # also a base build of the gateway (a copy of dist/ made
 *                                        # at the base commit), A/B alternated in every round
 *
 * Topology (@tips/testbed, namespace names carry the PID, all removed at the end): the e2e
 * GatewayLab — the real tips-master in a cloud namespace, the real tips-gateway enrolled with it on
 * the LAN bridge br0 (pool .100–.200) — and a `perf` namespace on that bridge running ISC's
 * `perfdhcp` (Debian kea-admin) with the N MACs of `-M`, each declared as a metal with a default
 * Phase 1 Space, so the gateway serves them as Active rows (an undeclared MAC would be blocked).
 * perfdhcp behaves as a relay agent (giaddr set, source port 67), which the gateway's nftables
 * input chain refuses from its LAN; a table of the bench's own rewrites that source port to 68
 * before the gateway's chains (Kea reads raw sockets, before netfilter). Both servers answer the
 * relay at giaddr:67 the same way.
 * Kea (`kea-dhcp4`, memfile leases persisted to a CSV file, same subnet and pool .100–.200, same
 * lease time) runs in the gateway namespace on br0 while tips-gateway is stopped; the two take
 * turns, Kea first, `TIPS_BENCH_ROUNDS` times.
 *
 * Each turn: a rate sweep (`perfdhcp -r <rate>` for TIPS_BENCH_SECONDS, `-B` broadcast replies,
 * DORA); per rate, the 4-way exchanges/s perfdhcp reports, the drops of each half, the mean
 * latency of each half, and the server's CPU time per exchange (/proc/<pid>/stat, which the
 * machine's load does not bend). A server's figures: its peak 4-way exchanges/s over the sweep
 * (what it sustains when asked for more), and its best rate with ≤ 1 % of exchanges dropped.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Namespace, NsProcess } from '@tips/testbed';
import { GATEWAY_BIN, GatewayLab } from '../e2e/gateway-topology.ts';

const CLIENTS = Number(process.env.TIPS_BENCH_CLIENTS ?? 100);
const SECONDS = Number(process.env.TIPS_BENCH_SECONDS ?? 8);
const RATES = (process.env.TIPS_BENCH_RATES ?? '300,600,1000,2000').split(',').map(Number);
const ROUNDS = Number(process.env.TIPS_BENCH_ROUNDS ?? 2);
const ADDR = { masterIp: '10.96.0.1', gatewayUplinkIp: '10.96.0.2', gatewayLanIp: '10.76.0.1' };
const LAN = '10.76.0';
const CLK_TCK = 100;

const hex = (n: number) => n.toString(16).padStart(2, '0');
const macs = Array.from({ length: CLIENTS }, (_, i) => `02:dc:00:00:${hex(i >> 8)}:${hex(i & 0xff)}`);

function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

interface Sweep {
  rate: number;
  exchangesPerSec: number;
  sent: number;
  drops: { discover: number; request: number };
  avgMs: { offer: number; ack: number };
  cpuUsPerExchange: number;
}

/** perfdhcp's report: "Rate: 1234.5 4-way exchanges/second", then one block per half (DO, RA). */
function parse(out: string): Omit<Sweep, 'rate' | 'cpuUsPerExchange'> {
  const rate = Number(/Rate:\s*([\d.]+)\s*4-way exchanges\/second/.exec(out)?.[1] ?? 0);
  const blocks = out.split(/\*\*\*Statistics for: /).slice(1);
  const half = (name: string) => blocks.find((b) => b.startsWith(name)) ?? '';
  const num = (b: string, label: string) => Number(new RegExp(`${label}:\\s*([\\d.]+)`).exec(b)?.[1] ?? Number.NaN);
  const d = half('DISCOVER-OFFER');
  const r = half('REQUEST-ACK');
  return {
    exchangesPerSec: rate,
    sent: num(d, 'sent packets'),
    drops: { discover: num(d, 'drops'), request: num(r, 'drops') },
    avgMs: { offer: num(d, 'avg delay'), ack: num(r, 'avg delay') },
  };
}

async function sweep(client: Namespace, serverPid: () => number, macList: string, rate: number): Promise<Sweep> {
  const pid = serverPid();
  const cpu0 = cpuSeconds(pid);
  const r = await client.exec('perfdhcp', ['-4', '-l', 'eth0', '-B', '-r', String(rate), '-M', macList, '-p', String(SECONDS), '-W', '500000', '-R', String(CLIENTS)], {
    timeoutMs: (SECONDS + 30) * 1000,
  });
  const cpu = cpuSeconds(pid) - cpu0;
  const p = parse(r.stdout + r.stderr);
  if (process.env.TIPS_BENCH_DEBUG) console.error(r.stdout + r.stderr);
  if (!p.exchangesPerSec && Number.isNaN(p.sent)) throw new Error(`perfdhcp gave no report (exit ${r.code}):\n${(r.stdout + r.stderr).slice(-2000)}`);
  const exchanges = p.exchangesPerSec * SECONDS;
  return { rate, ...p, cpuUsPerExchange: exchanges > 0 ? (cpu / exchanges) * 1e6 : Number.NaN };
}

function keaConfig(dir: string): string {
  const cfg = {
    Dhcp4: {
      'interfaces-config': { interfaces: ['br0'] },
      'lease-database': { type: 'memfile', persist: true, name: join(dir, 'kea-leases4.csv'), 'lfc-interval': 0 },
      'valid-lifetime': 600,
      subnet4: [{ subnet: `${LAN}.0/24`, pools: [{ pool: `${LAN}.100 - ${LAN}.200` }], 'option-data': [{ name: 'routers', data: `${LAN}.1` }] }],
      loggers: [{ name: 'kea-dhcp4', output_options: [{ output: 'stdout' }], severity: 'WARN' }],
    },
  };
  const file = join(dir, 'kea-dhcp4.conf');
  writeFileSync(file, JSON.stringify(cfg, null, 2));
  return file;
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'tips-bench-dhcp-'));
  const lab = await GatewayLab.start('dhcpb', ADDR);
  let kea: NsProcess | undefined;
  try {
    for (const [i, mac] of macs.entries()) await lab.declareMetal(`dhcp${i}`, mac);
    const macList = join(work, 'macs.txt');
    writeFileSync(macList, `${macs.join('\n')}\n`);
    // perfdhcp acts as a relay agent (giaddr = its address, UDP source port 67), which the gateway's
    // input chain does not take from its LAN (clients send from port 68). A table of the bench's own,
    // before the gateway's chains, rewrites that source port to 68 for the bench client's address;
    // the answer still goes to giaddr:67 as RFC 2131 says. Kea reads raw sockets, before netfilter.
    await lab.gw.execOk('nft', ['-f', '-'], {
      input: `table inet tips_bench {\n\tchain prerouting {\n\t\ttype filter hook prerouting priority -300; policy accept;\n\t\tip saddr ${LAN}.5 udp sport 67 udp dport 67 udp sport set 68\n\t}\n}\n`,
    });
    const client = await lab.topo.namespace('perf');
    await lab.topo.veth(client, 'eth0', lab.gw, 'perf0');
    await lab.gw.enslave('perf0', 'br0');
    await client.addAddress('eth0', `${LAN}.5/24`);

    // The gateway the lab started: the same command line, restarted for each of its turns.
    let gateway = lab.gateway;
    const gatewayArgs = [
      GATEWAY_BIN,
      'run',
      ...['--lan', 'br0', '--uplink', 'up0', '--pool', `${LAN}.100-${LAN}.200`, '--data-dir', lab.gatewayDataDir, '--lease-time', '600s'],
      ...['--retry-initial', '200ms', '--retry-max', '1s', '--nft-table', 'tips_gw', '--status-port', '0', '--no-boot-services'],
    ];
    const results: { server: string; round: number; sweeps: Sweep[] }[] = [];
    // With TIPS_BENCH_BASE, each round also runs the base build; the order alternates (A/B, B/A).
    const base = process.env.TIPS_BENCH_BASE;
    const gatewayTurn = async (round: number, server: string, main: string) => {
      const nodeArgs = process.env.TIPS_BENCH_GATEWAY_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
      gateway = lab.gw.spawn('node', [...nodeArgs, main, ...gatewayArgs.slice(1)], { logFile: join(work, `${server}-${round}.log`), label: server });
      await gateway.waitFor(/"msg":"ready"/, 30_000);
      const t: Sweep[] = [];
      for (const rate of RATES) t.push(await sweep(client, () => gateway.pid, macList, rate));
      results.push({ server, round, sweeps: t });
      await gateway.stop();
    };
    const keaConf = keaConfig(work);
    for (let round = 1; round <= ROUNDS; round++) {
      // Kea's turn: tips-gateway stopped, Kea on br0 with a fresh lease file.
      await gateway.stop();
      rmSync(join(work, 'kea-leases4.csv'), { force: true });
      kea = lab.gw.spawn('kea-dhcp4', ['-c', keaConf], {
        env: { ...process.env, KEA_PIDFILE_DIR: work, KEA_LOCKFILE_DIR: work },
        logFile: join(work, 'kea.log'),
        label: 'kea-dhcp4',
      });
      await new Promise((r) => setTimeout(r, 1500));
      if (!kea.running) throw new Error(`kea-dhcp4 exited:\n${kea.output.slice(-2000)}`);
      const k: Sweep[] = [];
      for (const rate of RATES) k.push(await sweep(client, () => kea!.pid, macList, rate));
      results.push({ server: 'kea', round, sweeps: k });
      await kea.stop();
      kea = undefined;

      // tips-gateway's turn (every declared MAC Active before the first measure).
      if (round === 1) {
        gateway = lab.gw.spawn('node', gatewayArgs, { logFile: join(work, 'warm-up.log'), label: 'tips-gateway' });
        await gateway.waitFor(/"msg":"ready"/, 30_000);
        // perfdhcp picks MACs at random: sweep again until every one was leased and decided.
        for (let attempt = 1; ; attempt++) {
          await sweep(client, () => gateway.pid, macList, 100);
          await new Promise((r) => setTimeout(r, 2000));
          const r = await lab.gw.execOk('node', [GATEWAY_BIN, 'table', '--data-dir', lab.gatewayDataDir, '--json']);
          const active = new Set((JSON.parse(r.stdout) as { rows: { mac: string; state: string }[] }).rows.filter((x) => x.state === 'active').map((x) => x.mac));
          const missing = macs.filter((m) => !active.has(m));
          if (missing.length === 0) break;
          if (attempt === 10) throw new Error(`not Active after ${attempt} warm-up sweeps: ${missing.join(' ')}\n${gateway.output.slice(-3000)}`);
        }
        await gateway.stop();
      }
      const turns: [string, string][] = [['tips-gateway', GATEWAY_BIN]];
      if (base) turns[round % 2 === 1 ? 'unshift' : 'push'](['tips-gateway base', base]);
      for (const [server, main] of turns) await gatewayTurn(round, server, main);
    }
    const best = (s: Sweep[]) => Math.max(0, ...s.filter((x) => (x.drops.discover + x.drops.request) / Math.max(1, x.sent) <= 0.01).map((x) => x.exchangesPerSec));
    const fmt = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '—');
    console.log(`load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}, ${CLIENTS} clients, ${SECONDS} s per rate`);
    console.log('| server | round | rate asked | 4-way/s | sent | drops DO / RA | avg ms DO / RA | CPU µs / exchange |');
    console.log('|---|---|---|---|---|---|---|---|');
    for (const r of results) {
      for (const s of r.sweeps) {
        console.log(
          `| ${r.server} | ${r.round} | ${s.rate} | ${fmt(s.exchangesPerSec)} | ${fmt(s.sent)} | ${fmt(s.drops.discover)} / ${fmt(s.drops.request)} | ${fmt(s.avgMs.offer, 2)} / ${fmt(s.avgMs.ack, 2)} | ${fmt(s.cpuUsPerExchange)} |`,
        );
      }
    }
    const kBest = Math.max(...results.filter((r) => r.server === 'kea').map((r) => best(r.sweeps)));
    const tBest = Math.max(...results.filter((r) => r.server === 'tips-gateway').map((r) => best(r.sweeps)));
    const peak = (server: string) => Math.max(...results.filter((r) => r.server === server).flatMap((r) => r.sweeps.map((x) => x.exchangesPerSec)));
    console.log(`peak 4-way exchanges/s: kea ${fmt(peak('kea'))}/s, tips-gateway ${fmt(peak('tips-gateway'))}/s → ratio ${fmt(peak('tips-gateway') / peak('kea'), 2)} (goal ≥ 0.8)`);
    if (base) console.log(`peak 4-way exchanges/s: tips-gateway base ${fmt(peak('tips-gateway base'))}/s → ratio ${fmt(peak('tips-gateway base') / peak('kea'), 2)}`);
    const cpu = (server: string) => {
      const all = results.filter((r) => r.server === server).flatMap((r) => r.sweeps.map((s) => s.cpuUsPerExchange)).filter(Number.isFinite).sort((a, b) => a - b);
      return all[Math.floor(all.length / 2)] ?? Number.NaN;
    };
    console.log(`best rate with ≤ 1 % drops: kea ${fmt(kBest)}/s, tips-gateway ${fmt(tBest)}/s → ratio ${fmt(tBest / kBest, 2)}`);
    console.log(`median CPU per exchange: kea ${fmt(cpu('kea'))} µs, tips-gateway ${fmt(cpu('tips-gateway'))} µs → ratio ${fmt(cpu('kea') / cpu('tips-gateway'), 2)}`);
    if (base) console.log(`median CPU per exchange: tips-gateway base ${fmt(cpu('tips-gateway base'))} µs → ratio ${fmt(cpu('kea') / cpu('tips-gateway base'), 2)}`);
  } finally {
    await kea?.stop();
    await lab.destroy();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
