// T17 multi-homing with the real parts: tips-master in a "cloud" namespace, a metal namespace joined
// to it by two veth links (each shaped with tc so a download lasts long enough to cut), the real
// tips-client bundle (Debian's Node 18) downloading one Glaze over both. The kernel's own counters
// (`ip -s link`) say which link carried the bytes; `ip link set … down` cuts one mid-download; kill -9
// interrupts the client and the next run keeps what it had.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LINKS, MultihomeLab } from './multihome-lab.ts';

const MiB = 1024 * 1024;
let lab: MultihomeLab;

function events(log: string, event: string): Record<string, unknown>[] {
  return log
    .split('\n')
    .filter((l) => l.includes(`"event":"${event}"`))
    .map((l) => JSON.parse(l.slice(l.indexOf('{'))) as Record<string, unknown>);
}
const sumRx = (a: Record<string, number>, b: Record<string, number>) => LINKS.reduce((n, l) => n + (b[l.metalIf]! - a[l.metalIf]!), 0);

describe('T17 multi-homing: one Glaze over two links of the metal, assembled and verified by digest', () => {
  beforeAll(async () => {
    lab = await MultihomeLab.start();
    await lab.metalInSpace('dual');
  }, 300_000);
  afterAll(async () => {
    await lab?.destroy();
  });

  it('both links carry disjoint parts of the payload; one link cut mid-download and the rest still arrives, digest right, installed', async () => {
    const g = lab.glaze('dual', 'big', '1.0', 10, 24 * MiB);
    // ~3 MB/s a link: the download takes several seconds, long enough to cut a link in the middle.
    await lab.shape(24);
    const before = await lab.rxBytes();
    const c = lab.client([], 'client-cut');
    await c.waitFor(/"event":"download_multipath"/, 120_000);
    await c.waitFor(/"event":"download_progress".*"percent":[3-9]\d/, 180_000);
    const atCut = await lab.rxBytes();
    await lab.setLink('eth2', 'down');
    const code = await c.exited;
    const after = await lab.rxBytes();
    await lab.setLink('eth2', 'up');
    await lab.shape(undefined);
    expect(code, c.output.slice(-3000)).toBe(0);

    // Both links carried a real share before the cut (the payload is incompressible: bytes are bytes).
    for (const l of LINKS) expect(atCut[l.metalIf]! - before[l.metalIf]!, l.metalIf).toBeGreaterThan(2 * MiB);
    // After the cut nothing more came in over eth2 than was already on its way (the tbf queue holds
    // up to 200 ms of it); eth1 brought the rest.
    expect(after.eth2! - atCut.eth2!).toBeLessThan(512 * 1024);
    expect(after.eth1! - atCut.eth1!).toBeGreaterThan(2 * MiB);
    // Disjoint ranges: the links together carried the payload about once, not once each.
    expect(sumRx(before, after)).toBeGreaterThan(g.size);
    expect(sumRx(before, after)).toBeLessThan(g.size * 1.2);

    const done = events(c.output, 'download_done')[0]!;
    expect(done.bytes).toBe(g.size);
    const perLink = done.perLink as Record<string, number>;
    expect(perLink['10.71.1.2']! + perLink['10.71.2.2']!).toBe(g.size);
    expect(perLink['10.71.2.2']).toBeGreaterThan(0);
    expect(events(c.output, 'download_link_error').some((e) => e.localAddress === '10.71.2.2')).toBe(true);
    expect(events(c.output, 'download_progress').length).toBeGreaterThanOrEqual(5);
    // The client checked the SUIT digest before installing: installed, reported, the bytes are the Glaze's.
    expect(events(c.output, 'glaze_installed').map((e) => e.glaze)).toEqual([g.id]);
    expect(readFileSync(join(lab.state, 'apps/big/current/hello.txt'), 'utf8')).toBe('big 1.0');
    const u = await lab.api<{ updates: { installed: { glazeId: string }[] } }>('GET', `/api/v1/metals/${lab.metalId}`);
    expect(u.updates.installed.map((i) => i.glazeId)).toEqual([g.id]);
  }, 600_000);

  it('kill -9 mid-download: the next run keeps the ranges already written and fetches only the rest', async () => {
    const g = lab.glaze('dual', 'big2', '2.0', 20, 24 * MiB);
    await lab.shape(24);
    const first = lab.client([], 'client-killed');
    await first.waitFor(/"event":"download_progress".*"percent":[4-9]\d/, 180_000);
    await first.kill9();
    const record = join(lab.state, 'downloads', `${g.id}.part.mp.json`);
    expect(existsSync(record)).toBe(true);
    const kept = (JSON.parse(readFileSync(record, 'utf8')) as { done: [number, number][] }).done.reduce((n, [s, e]) => n + e - s, 0);
    expect(kept).toBeGreaterThan(4 * MiB);
    await lab.shape(undefined);

    const before = await lab.rxBytes();
    const second = lab.client([], 'client-resumed');
    expect(await second.exited, second.output.slice(-3000)).toBe(0);
    const after = await lab.rxBytes();
    const resume = events(second.output, 'download_resume')[0]!;
    expect(resume.bytes).toBe(kept);
    // Only the missing part crossed the links again (plus the API calls and TLS).
    expect(sumRx(before, after)).toBeLessThan(g.size - kept + 2 * MiB);
    expect(events(second.output, 'glaze_installed').map((e) => e.glaze)).toEqual([g.id]);
    expect(readFileSync(join(lab.state, 'apps/big2/current/hello.txt'), 'utf8')).toBe('big2 2.0');
    expect(existsSync(record)).toBe(false);
  }, 600_000);
});
