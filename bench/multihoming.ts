/**
 * bench/multihoming: T17 — the same download over one link and over two links of the same rate.
 * Issue 9 goal: two links finish in ≤ 0.55× the single-link time.
 *
 *   node --import tsx bench/multihoming.ts     # as root; TIPS_BENCH_MIB (default 48), TIPS_BENCH_MBIT (default 40), TIPS_BENCH_ROUNDS (default 2)
 *
 * e2e/multihome-lab.ts: the real tips-master in a "cloud" namespace, the metal namespace joined to
 * it by two veth links, each shaped with tc (tbf on the master's end) to the same rate; the real
 * tips-client bundle under Debian's Node 18 runs `run --once` and downloads a fresh signed Glaze
 * (incompressible bytes). "single": the Space links the metal by eth1 only (the one-connection
 * download); "dual": by eth1 and eth2 (disjoint Range requests bound to each link). The time is the
 * client's own (`download_finished.ms`: first request to the last byte on disk, fsync'ed), rounds
 * alternate single/dual; the ratio uses the best of each.
 */
import { cpus, loadavg } from 'node:os';
import { MultihomeLab } from '../e2e/multihome-lab.ts';

const MIB = Number(process.env.TIPS_BENCH_MIB ?? 48);
const MBIT = Number(process.env.TIPS_BENCH_MBIT ?? 40);
const ROUNDS = Number(process.env.TIPS_BENCH_ROUNDS ?? 2);

const lab = await MultihomeLab.start();
try {
  await lab.metalInSpace('dual');
  await lab.shape(MBIT);
  const times: Record<'single' | 'dual', number[]> = { single: [], dual: [] };
  const carried: Record<string, number>[] = [];
  let n = 0;
  for (let round = 0; round < ROUNDS; round++) {
    for (const mode of ['single', 'dual'] as const) {
      n++;
      // The membership decides the links: eth1 alone, or eth1 and eth2.
      await lab.api('DELETE', `/api/v1/spaces/dual/members/${lab.metalId}`);
      await lab.api('POST', '/api/v1/spaces/dual/members', { metal: lab.metalId, interfaces: mode === 'single' ? ['eth1'] : ['eth1', 'eth2'] });
      const g = lab.glaze('dual', `bench${n}`, '1.0', 100 + n, MIB * 1024 * 1024);
      const before = await lab.rxBytes();
      const c = lab.client([], `bench-${n}-${mode}`);
      const code = await c.exited;
      if (code !== 0) throw new Error(`tips-client exited ${code}:\n${c.output.slice(-3000)}`);
      const after = await lab.rxBytes();
      const line = c.output.split('\n').find((l) => l.includes('"event":"download_finished"'));
      if (!line || !c.output.includes('"event":"glaze_installed"')) throw new Error(`no download_finished/glaze_installed:\n${c.output.slice(-3000)}`);
      const ev = JSON.parse(line.slice(line.indexOf('{'))) as { ms: number; bytes: number; links: number };
      if (ev.bytes !== g.size) throw new Error(`downloaded ${ev.bytes} of ${g.size}`);
      times[mode].push(ev.ms);
      const rx = { eth1: after.eth1! - before.eth1!, eth2: after.eth2! - before.eth2! };
      carried.push(rx);
      console.log(
        `${mode.padEnd(6)} round ${round + 1}: ${(ev.ms / 1000).toFixed(2)} s for ${(g.size / 2 ** 20).toFixed(1)} MiB (${((g.size * 8) / 1e6 / (ev.ms / 1000)).toFixed(1)} Mbit/s) — rx eth1 ${(rx.eth1 / 2 ** 20).toFixed(1)} MiB, eth2 ${(rx.eth2 / 2 ** 20).toFixed(1)} MiB`,
      );
      const doneLine = c.output.split('\n').find((l) => l.includes('"event":"download_done"'));
      if (doneLine) console.log(`  links: ${JSON.stringify(JSON.parse(doneLine.slice(doneLine.indexOf('{'))).linkStats)}`);
    }
  }
  const best = (xs: number[]) => Math.min(...xs);
  const ratio = best(times.dual) / best(times.single);
  console.log(`multihoming: ${MIB} MiB Glaze, each link tbf ${MBIT} Mbit/s; client node ${lab.nodeVersion}; ${cpus().length} × ${cpus()[0]?.model}; load average ${loadavg()[0]!.toFixed(1)}`);
  console.log(`single link (best of ${times.single.length}): ${(best(times.single) / 1000).toFixed(2)} s   [${times.single.map((t) => (t / 1000).toFixed(2)).join(', ')}]`);
  console.log(`two links   (best of ${times.dual.length}): ${(best(times.dual) / 1000).toFixed(2)} s   [${times.dual.map((t) => (t / 1000).toFixed(2)).join(', ')}]`);
  console.log(`two/single = ${ratio.toFixed(3)} (goal ≤ 0.55: ${ratio <= 0.55 ? 'met' : 'NOT met'})`);
} finally {
  await lab.destroy();
}
