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

  it('space show follows the members past the first page; space members pages like the lists', async () => {
    await m.services.spaces.create(m.alice.id, { name: 'fleet', phase: 2 });
    const metals = JSON.parse((await tips(['metal', 'list', '--json'])).stdout) as { id: string }[];
    for (const metal of metals) await m.services.spaces.addMember(m.alice.id, 'fleet', { metal: metal.id, interfaces: ['eth0'] });
    const ids = metals.map((x) => x.id).sort();
    const shown = await tips(['space', 'show', 'fleet', '--json']);
    expect(shown.code, shown.stderr).toBe(0);
    const space = JSON.parse(shown.stdout) as { members: { metalId: string }[]; membersNextCursor: string | null };
    expect(space.members.map((x) => x.metalId)).toEqual(ids);
    expect(space.membersNextCursor).toBeNull();
    expect((await tips(['space', 'show', 'fleet'])).stdout.trimEnd().split('\n').filter((l) => l.includes(' via eth0'))).toHaveLength(N);
    const lines = (await tips(['space', 'members', 'fleet', '--jsonl', '--limit', '700'])).stdout.trimEnd().split('\n');
    expect(lines.map((l) => (JSON.parse(l) as { metalId: string }).metalId)).toEqual(ids.slice(0, 700));
    const t = (await tips(['space', 'members', 'fleet'])).stdout.trimEnd().split('\n');
    expect(t[0]).toMatch(/^METAL\s+INTERFACES\s+DEFAULT$/);
    expect(t).toHaveLength(N + 1);
  }, 120_000);

  it('gateway show prints the whole interface table past its first page; gateway interfaces pages it', async () => {
    const gw = await TestGateway.enroll(m.app, m.alice.token, 'gw-table');
    const rows = Array.from({ length: 1203 }, (_, i) => ({ mac: `02:dd:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`, ip: `10.8.${i >> 8}.${i & 255}`, state: 'active', gatewayInterface: 'lan0' }));
    expect((await gw.request('PUT', '/api/gateway/v1/table', { rows })).statusCode).toBe(204);
    const shown = await tips(['gateway', 'show', 'gw-table', '--json']);
    expect(shown.code, shown.stderr).toBe(0);
    const g = JSON.parse(shown.stdout) as { table: { rowCount: number; rows: unknown[]; nextCursor: string | null } };
    expect(g.table).toMatchObject({ rowCount: 1203, rows, nextCursor: null });
    const human = (await tips(['gateway', 'show', 'gw-table'])).stdout;
    expect(human).toContain('table:      1203 rows');
    expect(human.split('\n').filter((l) => l.includes(' lan0 '))).toHaveLength(1203);
    const lines = (await tips(['gateway', 'interfaces', 'gw-table', '--jsonl', '--limit', '600'])).stdout.trimEnd().split('\n');
    expect(lines.map((l) => JSON.parse(l))).toEqual(rows.slice(0, 600));
    expect((await tips(['gateway', 'interfaces', 'gw-table'])).stdout.trimEnd().split('\n')).toHaveLength(1204);
  }, 120_000);
});
