import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestGateway } from '../apps/master/src/domains/gateways/test-client.ts';
import type { TestMaster } from '../apps/master/src/testing.ts';
import { cliAgainstTestMaster } from './helpers.ts';

// The real `tips` CLI following pages of an in-process master: more metals than one page (the CLI asks 500 at a time).
let m: TestMaster;
let tips: Awaited<ReturnType<typeof cliAgainstTestMaster>>['run'];
const N = 1203;
beforeAll(async () => {
  ({ m, run: tips } = await cliAgainstTestMaster());
  for (let n = 0; n < N; n++) {
    const mac = `02:cc:00:00:${(n >> 8).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`;
    await m.services.metals.create(m.alice.id, { name: `node-${String(n).padStart(4, '0')}`, labels: { rack: String(n % 3) }, interfaces: [{ name: 'eth0', mac, type: 'ethernet' }] });
  }
}, 120_000);
afterAll(async () => m.close());

describe('D6 tips list commands follow pages', () => {
  it('--json is one array of every metal, each once, in the order of the pages', async () => {
    const r = await tips(['metal', 'list', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const all = JSON.parse(r.stdout) as { name: string }[];
    expect(all).toHaveLength(N);
    expect(new Set(all.map((x) => x.name)).size).toBe(N);
    // Same bytes as printing the whole array at once, as before pagination.
    expect(r.stdout).toBe(`${JSON.stringify(all, null, 2)}\n`);
  });

  it('--jsonl streams one object per line; --limit caps the total; filters apply to every page', async () => {
    const lines = (await tips(['metal', 'list', '--jsonl'])).stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(N);
    expect(JSON.parse(lines[0]!)).toMatchObject({ name: expect.stringMatching(/^node-/) });
    const capped = await tips(['metal', 'list', '--jsonl', '--limit', '501']);
    expect(capped.stdout.trimEnd().split('\n')).toEqual(lines.slice(0, 501));
    const rack1 = JSON.parse((await tips(['metal', 'list', '--json', '--label', 'rack=1'])).stdout) as { labels: { rack: string } }[];
    expect(rack1).toHaveLength(401);
    expect(rack1.every((x) => x.labels.rack === '1')).toBe(true);
    expect(JSON.parse((await tips(['metal', 'list', '--json', '--limit', '2'])).stdout)).toHaveLength(2);
  });

  it('prints a table with one header and a row per metal across pages; refuses bad options', async () => {
    const t = await tips(['metal', 'list']);
    const rows = t.stdout.trimEnd().split('\n');
    expect(rows[0]).toMatch(/^NAME\s+TIPS ID\s+INTERFACES$/);
    expect(rows).toHaveLength(N + 1);
    expect(rows.filter((l) => l.startsWith('NAME'))).toHaveLength(1);
    for (const bad of [['--limit', '0'], ['--limit', 'x'], ['--json', '--jsonl']]) {
      const r = await tips(['metal', 'list', ...bad]);
      expect(r.code, bad.join(' ')).toBe(2);
    }
    expect((await tips(['space', 'list'])).stdout).toBe('(none)\n');
    expect((await tips(['space', 'list', '--json'])).stdout).toBe('[]\n');
  });

  it('discovery failures: --limit caps the table, --json and the --jsonl export alike', async () => {
    const gw = await TestGateway.enroll(m.app, m.alice.token, 'gw-pages');
    for (let n = 0; n < 5; n++) await gw.register({ mac: `02:ee:00:00:00:0${n}`, ip: `10.9.0.${n + 1}`, gatewayInterface: 'lan0' });
    const newest = JSON.parse((await tips(['discovery', 'failures', '--json', '--limit', '3'])).stdout) as { mac: string }[];
    expect(newest.map((f) => f.mac)).toEqual(['02:ee:00:00:00:04', '02:ee:00:00:00:03', '02:ee:00:00:00:02']);
    const oldest = await tips(['discovery', 'failures', '--jsonl', '--limit', '2']);
    expect(oldest.code, oldest.stderr).toBe(0);
    expect(oldest.stdout.trimEnd().split('\n').map((l) => (JSON.parse(l) as { mac: string }).mac)).toEqual(['02:ee:00:00:00:00', '02:ee:00:00:00:01']);
    expect((await tips(['discovery', 'failures'])).stdout.trimEnd().split('\n')).toHaveLength(6);
  });
});
