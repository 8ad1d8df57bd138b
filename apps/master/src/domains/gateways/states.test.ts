import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testMaster, type TestMaster } from '../../testing.ts';
import { TestGateway } from './test-client.ts';

let m: TestMaster;
beforeAll(async () => {
  m = await testMaster();
});
afterAll(async () => m?.close());

const row = (mac: string, state: string, extra: Record<string, unknown> = {}) => ({ mac, state, gatewayInterface: 'br0', ip: '10.0.0.5', tipsId: null, reason: null, updatedAt: Date.parse('2026-11-29T12:00:00Z'), ...extra });

describe('T11 D6 interface states and default Spaces for a page of metals (the fleet view)', () => {
  it("answers each MAC's row from the latest table of each of the owner's gateways, and nothing from another owner's", async () => {
    const a1 = await TestGateway.enroll(m.app, m.alice.token, 'states-a1');
    const a2 = await TestGateway.enroll(m.app, m.alice.token, 'states-a2');
    const b = await TestGateway.enroll(m.app, m.bob.token, 'states-b');
    await a1.request('PUT', '/api/gateway/v1/table', { rows: [row('02:00:00:00:51:01', 'active'), row('02:00:00:00:51:02', 'pending')] });
    await a2.request('PUT', '/api/gateway/v1/table', { rows: [row('02:00:00:00:51:01', 'blocked', { reason: 'metal_blocked' })] });
    await b.request('PUT', '/api/gateway/v1/table', { rows: [row('02:00:00:00:51:03', 'active')] });
    const r = await m.app.inject({ url: '/api/v1/interface-states?macs=02:00:00:00:51:01,02-00-00-00-51-03,02:00:00:00:51:09', headers: m.auth(m.alice.token) });
    expect(r.statusCode).toBe(200);
    const items = r.json().items as { mac: string; gatewayName: string; state: string; reason: string | null; lastSeenAt: string }[];
    expect(items.map((i) => [i.mac, i.gatewayName, i.state, i.reason]).sort()).toEqual([
      ['02:00:00:00:51:01', 'states-a1', 'active', null],
      ['02:00:00:00:51:01', 'states-a2', 'blocked', 'metal_blocked'],
    ]);
    expect(items[0]!.lastSeenAt).toBe('2026-11-29T12:00:00.000Z');
    // A new snapshot replaces the old one (the index is rebuilt per snapshot).
    await a1.request('PUT', '/api/gateway/v1/table', { rows: [row('02:00:00:00:51:01', 'blocked')] });
    const again = await m.app.inject({ url: '/api/v1/interface-states?macs=02:00:00:00:51:01', headers: m.auth(m.alice.token) });
    expect((again.json().items as { state: string }[]).map((i) => i.state)).toEqual(['blocked', 'blocked']);
  });

  it('refuses a MAC that is not one, naming it, and more than 200', async () => {
    const bad = await m.app.inject({ url: '/api/v1/interface-states?macs=02:00:00:00:51:01,nope', headers: m.auth(m.alice.token) });
    expect([bad.statusCode, bad.json().error.field]).toEqual([400, 'querystring.macs']);
    const many = Array.from({ length: 201 }, (_, i) => `02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`).join(',');
    expect((await m.app.inject({ url: `/api/v1/interface-states?macs=${many}`, headers: m.auth(m.alice.token) })).statusCode).toBe(400);
  });

  it("names each metal's default Phase 1 Space; another owner's metal is a 404", async () => {
    const h = m.auth(m.alice.token);
    const mk = async (name: string, mac: string) => (await m.app.inject({ method: 'POST', url: '/api/v1/metals', headers: h, payload: { name, interfaces: [{ name: 'eth0', mac, type: 'ethernet', pxe: true }] } })).json().id as string;
    const one = await mk('def-1', '02:00:00:00:52:01');
    const two = await mk('def-2', '02:00:00:00:52:02');
    const space = (await m.app.inject({ method: 'POST', url: '/api/v1/spaces', headers: h, payload: { name: 'def-base', phase: 1 } })).json().id;
    await m.app.inject({ method: 'POST', url: `/api/v1/spaces/${space}/members`, headers: h, payload: { metal: one, interfaces: ['eth0'], default: true } });
    const r = await m.app.inject({ url: `/api/v1/default-spaces?metals=${one},def-2`, headers: h });
    expect(r.json().items).toEqual([{ metalId: one, spaceId: space, spaceName: 'def-base' }]);
    expect(two).toMatch(/^mtl_/);
    const bob = await m.app.inject({ url: `/api/v1/default-spaces?metals=${one}`, headers: m.auth(m.bob.token) });
    expect(bob.statusCode).toBe(404);
  });
});

describe('T11 D6 the metal list filters by interface state and by name prefix, on the server', () => {
  it('lists the metals with an interface in the asked state at any gateway, in list order, paged; and names by prefix', async () => {
    const h = m.auth(m.alice.token);
    const names: string[] = [];
    for (let i = 0; i < 6; i++) {
      const name = `flt-${i % 2 ? 'odd' : 'even'}-${i}`;
      names.push(name);
      const r = await m.app.inject({ method: 'POST', url: '/api/v1/metals', headers: h, payload: { name, interfaces: [{ name: 'eth0', mac: `02:00:00:00:53:0${i}`, type: 'ethernet' }] } });
      expect(r.statusCode).toBe(201);
    }
    const gw = await TestGateway.enroll(m.app, m.alice.token, 'states-filter');
    await gw.request('PUT', '/api/gateway/v1/table', {
      rows: [row('02:00:00:00:53:00', 'active'), row('02:00:00:00:53:02', 'active'), row('02:00:00:00:53:03', 'blocked'), row('02:00:00:00:53:04', 'pending'), row('02:00:00:00:53:05', 'active')],
    });
    const list = async (q: string, token = m.alice.token) => {
      const r = await m.app.inject({ url: `/api/v1/metals?${q}`, headers: m.auth(token) });
      expect(r.statusCode, r.body).toBe(200);
      return r.json() as { items: { name: string }[]; nextCursor: string | null };
    };
    expect((await list('state=active')).items.map((x) => x.name)).toEqual(['flt-even-0', 'flt-even-2', 'flt-odd-5']);
    const first = await list('state=active&limit=2');
    expect(first.items.map((x) => x.name)).toEqual(['flt-even-0', 'flt-even-2']);
    expect((await list(`state=active&limit=2&cursor=${first.nextCursor}`)).items.map((x) => x.name)).toEqual(['flt-odd-5']);
    expect((await list('state=blocked')).items.map((x) => x.name)).toEqual(['flt-odd-3']);
    expect((await list('state=pending&prefix=flt-even')).items.map((x) => x.name)).toEqual(['flt-even-4']);
    expect((await list('prefix=flt-odd')).items.map((x) => x.name)).toEqual(['flt-odd-1', 'flt-odd-3', 'flt-odd-5']);
    expect((await list('prefix=flt-odd-3')).items.map((x) => x.name)).toEqual(['flt-odd-3']);
    expect((await list('prefix=FLT')).items).toEqual([]);
    // Bob has none of these metals, whatever their state at Alice's gateway.
    expect((await list('state=active', m.bob.token)).items.map((x) => x.name).filter((n) => n.startsWith('flt-'))).toEqual([]);
    // The answer follows the metals and the tables (the set is cached per snapshot and metal change).
    await m.app.inject({ method: 'DELETE', url: '/api/v1/metals/flt-odd-3', headers: h });
    expect((await list('state=blocked')).items).toEqual([]);
    await gw.request('PUT', '/api/gateway/v1/table', { rows: [row('02:00:00:00:53:01', 'blocked')] });
    expect((await list('state=blocked')).items.map((x) => x.name)).toEqual(['flt-odd-1']);
    expect((await list('state=active')).items).toEqual([]);
    const bad = await m.app.inject({ url: '/api/v1/metals?state=sleeping', headers: h });
    expect([bad.statusCode, bad.json().error.field]).toEqual([400, 'querystring.state']);
  });

  it('answers default Spaces for 200 metals with a fixed number of queries (no query per metal)', async () => {
    const h = m.auth(m.alice.token);
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) {
      const r = await m.app.inject({ method: 'POST', url: '/api/v1/metals', headers: h, payload: { name: `many-${i}`, interfaces: [{ name: 'eth0', mac: `02:00:00:00:54:${i.toString(16).padStart(2, '0')}`, type: 'ethernet', pxe: true }] } });
      ids.push(r.json().id);
    }
    let queries = 0;
    const exec = m.db.getExecutor();
    const original = exec.executeQuery.bind(exec);
    exec.executeQuery = ((...args: Parameters<typeof original>) => {
      queries++;
      return original(...args);
    }) as typeof exec.executeQuery;
    try {
      queries = 0;
      const few = await m.app.inject({ url: `/api/v1/default-spaces?metals=${ids.slice(0, 2).join(',')}`, headers: h });
      const small = queries;
      queries = 0;
      const all = await m.app.inject({ url: `/api/v1/default-spaces?metals=${[...ids, 'many-0'].join(',')}`, headers: h });
      expect([few.statusCode, all.statusCode]).toEqual([200, 200]);
      expect(queries).toBe(small + 1); // names are one more query than IDs alone, never one per metal
    } finally {
      exec.executeQuery = original;
    }
    const unknown = await m.app.inject({ url: `/api/v1/default-spaces?metals=${ids[0]},nobody-here`, headers: h });
    expect(unknown.statusCode).toBe(404);
  });
});

describe('T11 the metal list keeps only a set of metals, small or large, in list order', () => {
  it('a set over 500 is walked in batches and pages the same as a small set is looked up', async () => {
    const owner = m.bob.id;
    // Rows as the metals store writes them, inserted in bulk (2600 creates through the service take ~20 s under load).
    const ids = Array.from({ length: 2600 }, (_, i) => `mtl_walk${String(i).padStart(4, '0')}`);
    for (let from = 0; from < ids.length; from += 500) {
      await m.db
        .insertInto('metals')
        .values(ids.slice(from, from + 500).map((id, k) => {
          const at = new Date(Date.parse('2026-11-01T00:00:00Z') + from + k).toISOString();
          return { id, owner_id: owner, name: `walk-${String(from + k).padStart(4, '0')}`, labels: '{}', interfaces: '[]', engine: null, created_at: at, updated_at: at };
        }))
        .execute();
    }
    // Every 4th metal, and the last one alone after the first batch of 2000 the walk reads.
    const chosen = ids.filter((_, i) => i % 4 === 1 || i === 2599);
    const set = new Set(chosen);
    expect(set.size).toBeGreaterThan(500);
    const walk = async (limit: number) => {
      const out: string[] = [];
      let after: { at: string; id: string } | undefined;
      for (;;) {
        const page = await m.services.metals.listStored(owner as never, { idSet: set }, { limit: limit + 1, ...(after ? { after } : {}) });
        out.push(...page.slice(0, limit).map((x) => x.id));
        if (page.length <= limit) return out;
        const last = page[limit - 1]!;
        after = { at: last.createdAt, id: last.id };
      }
    };
    expect(await walk(50)).toEqual(chosen);
    expect(await walk(1000)).toEqual(chosen);
    // The same through a small set: a lookup by ID, in the same order.
    const small = new Set(chosen.slice(0, 10));
    expect((await m.services.metals.listStored(owner as never, { idSet: small })).map((x) => x.id)).toEqual(chosen.slice(0, 10));
    // Other filters still apply inside the set.
    expect((await m.services.metals.listStored(owner as never, { idSet: set, namePrefix: 'walk-259' })).map((x) => x.name)).toEqual(['walk-2593', 'walk-2597', 'walk-2599']);
  }, 120_000);
});
