import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type TestMaster, testMaster } from '../../testing.ts';

let m: TestMaster;
beforeEach(async () => {
  m = await testMaster();
});
afterEach(async () => m.close());

const pi = (over: Record<string, unknown> = {}) => ({
  name: 'pi-07',
  labels: { site: 'lab' },
  interfaces: [
    { name: 'eth0', mac: 'DC:A6:32:01:02:03', type: 'ethernet', pxe: true },
    { name: 'wlan0', mac: 'dc-a6-32-01-02-04', type: 'wifi' },
  ],
  ...over,
});

async function create(token: string, body: Record<string, unknown>) {
  return m.app.inject({ method: 'POST', url: '/api/v1/metals', headers: m.auth(token), payload: body });
}

describe('T3 Metal Objects through the owner API', () => {
  it('creates a metal with a TIPS ID and normalised MACs, and shows it by name or ID', async () => {
    const r = await create(m.alice.token, pi());
    expect(r.statusCode).toBe(201);
    const metal = r.json();
    expect(metal.id).toMatch(/^mtl_[0-9a-z]{26}$/);
    expect(metal.interfaces).toEqual([
      { name: 'eth0', mac: 'dc:a6:32:01:02:03', type: 'ethernet', pxe: true },
      { name: 'wlan0', mac: 'dc:a6:32:01:02:04', type: 'wifi', pxe: false },
    ]);
    for (const ref of ['pi-07', metal.id]) {
      const s = await m.app.inject({ url: `/api/v1/metals/${ref}`, headers: m.auth(m.alice.token) });
      expect(s.statusCode).toBe(200);
      expect(s.json()).toMatchObject({ id: metal.id, spaces: [] });
    }
  });

  it('gives IDs that are neither sequential nor shared', async () => {
    const a = (await create(m.alice.token, pi({ name: 'a', interfaces: [{ name: 'e', mac: '02:00:00:00:00:01', type: 'other' }] }))).json();
    const b = (await create(m.alice.token, pi({ name: 'b', interfaces: [{ name: 'e', mac: '02:00:00:00:00:02', type: 'other' }] }))).json();
    expect(a.id).not.toBe(b.id);
    expect(a.id.slice(0, 10)).not.toBe(b.id.slice(0, 10));
  });

  it.each([
    [{ interfaces: [{ name: 'eth0', mac: 'dc:a6:32:01:02', type: 'ethernet' }] }, 400, 'invalid_value', 'interfaces[0].mac'],
    [{ interfaces: [{ name: 'eth0', mac: 'dc:a6:32:01:02:03', type: 'token-ring' }] }, 400, 'invalid_value', 'interfaces[0].type'],
    [{ interfaces: [] }, 400, 'invalid_value', 'interfaces'],
    [{ name: 'x'.repeat(65) }, 400, 'validation_failed', 'name'],
    [{ name: 'has space' }, 400, 'invalid_value', 'name'],
    [{ color: 'red' }, 400, 'validation_failed', 'color'],
    [{ interfaces: [{ name: 'eth0', mac: 'dc:a6:32:01:02:03', type: 'ethernet', speed: 1 }] }, 400, 'validation_failed', 'interfaces[0].speed'],
    [
      {
        interfaces: [
          { name: 'eth0', mac: 'dc:a6:32:01:02:03', type: 'ethernet' },
          { name: 'eth1', mac: 'DC:A6:32:01:02:03', type: 'ethernet' },
        ],
      },
      422,
      'duplicate_interface',
      'interfaces[1].mac',
    ],
  ])('refuses bad input %j with %i %s naming %s, and changes nothing', async (over, status, code, field) => {
    const r = await create(m.alice.token, pi(over));
    expect(r.statusCode).toBe(status);
    expect(r.json().error).toMatchObject({ code, field });
    expect(r.json().requestId).toBeTruthy();
    const list = await m.app.inject({ url: '/api/v1/metals', headers: m.auth(m.alice.token) });
    expect(list.json().items).toEqual([]);
  });

  it('refuses a MAC held by another of your metals, naming it', async () => {
    expect((await create(m.alice.token, pi())).statusCode).toBe(201);
    const mine = await create(m.alice.token, pi({ name: 'pi-08' }));
    expect(mine.statusCode).toBe(409);
    expect(mine.json().error).toMatchObject({ code: 'mac_taken', field: 'interfaces[0].mac' });
    expect(mine.json().error.message).toContain('pi-07');
    expect((await m.app.inject({ url: '/api/v1/metals', headers: m.auth(m.alice.token) })).json().items).toHaveLength(1);
  });

  it("T6 I5 a MAC is unique per owner: another owner declares the same MAC and learns nothing of the first", async () => {
    const alices = (await create(m.alice.token, pi())).json();
    const theirs = await create(m.bob.token, pi({ name: 'bobs' }));
    expect(theirs.statusCode).toBe(201);
    expect(JSON.stringify(theirs.json())).not.toContain(alices.id);
    // Each owner's metal keeps its interfaces; neither sees the other's.
    const list = async (token: string) => (await m.app.inject({ url: '/api/v1/metals', headers: m.auth(token) })).json().items;
    expect((await list(m.alice.token)).map((x: { id: string }) => x.id)).toEqual([alices.id]);
    expect((await list(m.bob.token)).map((x: { name: string; interfaces: { mac: string }[] }) => [x.name, x.interfaces[0]!.mac])).toEqual([['bobs', 'dc:a6:32:01:02:03']]);
    // Still unique within each owner, for Bob as for Alice.
    const again = await create(m.bob.token, pi({ name: 'bobs-2' }));
    expect(again.json().error).toMatchObject({ code: 'mac_taken' });
    expect(again.json().error.message).toContain('bobs');
    expect(again.json().error.message).not.toContain('pi-07');
  });

  it("answers 404 for another owner's metal, never 403, and changes nothing", async () => {
    const metal = (await create(m.alice.token, pi())).json();
    for (const [method, payload] of [
      ['GET', undefined],
      ['PATCH', { name: 'stolen' }],
      ['DELETE', undefined],
    ] as const) {
      const r = await m.app.inject({ method, url: `/api/v1/metals/${metal.id}`, headers: m.auth(m.bob.token), payload });
      expect(r.statusCode).toBe(404);
      expect(r.json().error.code).toBe('metal_not_found');
    }
    const still = await m.app.inject({ url: `/api/v1/metals/${metal.id}`, headers: m.auth(m.alice.token) });
    expect(still.json().name).toBe('pi-07');
  });

  it('refuses a wrong or missing token with 401 and says little', async () => {
    for (const headers of [{}, { authorization: 'Bearer tips_wrongwrongwrongwrongwrongwrongwrong1' }, { authorization: 'Basic abc' }]) {
      const r = await m.app.inject({ url: '/api/v1/metals', headers });
      expect(r.statusCode).toBe(401);
      expect(r.json().error).toEqual({ code: 'unauthenticated', message: 'a valid API token is required' });
    }
  });

  it('updates labels, name and interfaces; a metal name is unique per owner', async () => {
    const metal = (await create(m.alice.token, pi())).json();
    await create(m.alice.token, pi({ name: 'other', interfaces: [{ name: 'e', mac: '02:00:00:00:00:09', type: 'other' }] }));
    const clash = await m.app.inject({ method: 'PATCH', url: `/api/v1/metals/${metal.id}`, headers: m.auth(m.alice.token), payload: { name: 'other' } });
    expect(clash.statusCode).toBe(409);
    const r = await m.app.inject({
      method: 'PATCH',
      url: '/api/v1/metals/pi-07',
      headers: m.auth(m.alice.token),
      payload: { labels: { rack: '4' }, interfaces: [{ name: 'eth0', mac: 'dc:a6:32:01:02:03', type: 'ethernet', pxe: true }] },
    });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ labels: { rack: '4' }, interfaces: [{ name: 'eth0' }] });
    const byLabel = await m.app.inject({ url: '/api/v1/metals?label=rack=4', headers: m.auth(m.alice.token) });
    expect(byLabel.json().items.map((x: { name: string }) => x.name)).toEqual(['pi-07']);
    // The freed MAC can now be used by another of Alice's metals.
    expect((await create(m.alice.token, pi({ name: 'b', interfaces: [{ name: 'w', mac: 'dc:a6:32:01:02:04', type: 'wifi' }] }))).statusCode).toBe(201);
  });

  it('deletes a metal and frees its MACs', async () => {
    await create(m.alice.token, pi());
    expect((await m.app.inject({ method: 'DELETE', url: '/api/v1/metals/pi-07', headers: m.auth(m.alice.token) })).statusCode).toBe(204);
    expect((await create(m.alice.token, pi())).statusCode).toBe(201);
  });
});

describe('T3 D4 the metal list is spliced from stored JSON and says exactly what the API says of each metal', () => {
  it('answers the document the response schema would write: same fields, same order, same values, same bytes', async () => {
    const odd = { quote: 'a "quoted" \\ value', unicode: 'Grüße ✓ 😀', html: '</script><b>', empty: '' };
    const made = [
      (await create(m.alice.token, pi({ name: 'a1', labels: odd, engine: 'tinkerbell' }))).json(),
      (await create(m.alice.token, pi({ name: 'a2', labels: {}, interfaces: [{ name: 'e', mac: '02:00:00:00:00:02', type: 'other' }] }))).json(),
      (await create(m.alice.token, pi({ name: 'a3', interfaces: [{ name: 'e', mac: '02:00:00:00:00:03', type: 'other' }] }))).json(),
    ];
    expect(made.map((x) => x.id)).toHaveLength(3);
    const fields = ['id', 'name', 'labels', 'interfaces', 'engine', 'createdAt', 'updatedAt'];
    const seen: unknown[] = [];
    let cursor: string | null = null;
    do {
      const r: { statusCode: number; headers: Record<string, unknown>; body: string; json: () => { items: Record<string, unknown>[]; nextCursor: string | null } } = await m.app.inject({ url: `/api/v1/metals?limit=2${cursor ? `&cursor=${cursor}` : ''}`, headers: m.auth(m.alice.token) });
      expect(r.statusCode).toBe(200);
      expect(r.headers['content-type']).toBe('application/json; charset=utf-8');
      const page = r.json();
      // The exact bytes JSON.stringify writes: no stray whitespace, fields in the schema's order.
      expect(r.body).toBe(JSON.stringify(page));
      expect(Object.keys(page)).toEqual(['items', 'nextCursor']);
      for (const item of page.items) expect(Object.keys(item)).toEqual(fields);
      seen.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor !== null);
    // Each listed metal is what creating it answered (the serializer's output) and what showing it says.
    expect(seen).toEqual(made);
    for (const item of seen as { id: string }[]) {
      const shown = (await m.app.inject({ url: `/api/v1/metals/${item.id}`, headers: m.auth(m.alice.token) })).json();
      expect(Object.fromEntries(fields.map((f) => [f, shown[f]]))).toEqual(item);
    }
    expect((seen[0] as { labels: unknown }).labels).toEqual(odd);
    expect((seen[0] as { engine: unknown }).engine).toBe('tinkerbell');
    // Bob's list holds none of them.
    const bob = await m.app.inject({ url: '/api/v1/metals', headers: m.auth(m.bob.token) });
    expect(bob.body).toBe('{"items":[],"nextCursor":null}');
  });

  it('issue 10: answers the list from memory once loaded (metrics say so), and every write shows in the next page at once', async () => {
    for (const [n, mac] of [['m1', '02:00:00:00:01:01'], ['m2', '02:00:00:00:01:02'], ['m3', '02:00:00:00:01:03']] as const) {
      expect((await create(m.alice.token, pi({ name: n, interfaces: [{ name: 'e', mac, type: 'other' }] }))).statusCode).toBe(201);
    }
    const list = async () => (await m.app.inject({ url: '/api/v1/metals?limit=10', headers: m.auth(m.alice.token) })).json() as { items: { name: string }[] };
    const fromMemory = async () => Number(/tips_master_metal_list_pages_total\{source="memory"\} (\d+)/.exec((await m.app.inject({ url: '/metrics' })).body)?.[1] ?? 0);
    await expect.poll(async () => (await list()).items.length > 0 && (await fromMemory()) > 0).toBe(true);
    const before = await fromMemory();
    expect((await m.app.inject({ method: 'PATCH', url: '/api/v1/metals/m2', headers: m.auth(m.alice.token), payload: { name: 'renamed' } })).statusCode).toBe(200);
    expect((await m.app.inject({ method: 'DELETE', url: '/api/v1/metals/m3', headers: m.auth(m.alice.token) })).statusCode).toBe(204);
    expect((await list()).items.map((i) => i.name)).toEqual(['m1', 'renamed']);
    expect(await fromMemory()).toBe(before + 1);
    expect((await m.app.inject({ url: '/metrics' })).body).toMatch(/tips_master_metal_list_view_items 2\n/);
  });

  it('answers the same for every filter (name, label) as for the plain list', async () => {
    await create(m.alice.token, pi({ name: 'b1', labels: { rack: '1' } }));
    await create(m.alice.token, pi({ name: 'b2', labels: { rack: '2' }, interfaces: [{ name: 'e', mac: '02:00:00:00:00:12', type: 'other' }] }));
    const all = (await m.app.inject({ url: '/api/v1/metals', headers: m.auth(m.alice.token) })).json().items;
    const byName = await m.app.inject({ url: '/api/v1/metals?name=b2', headers: m.auth(m.alice.token) });
    expect(byName.json()).toEqual({ items: [all[1]], nextCursor: null });
    const byLabel = await m.app.inject({ url: '/api/v1/metals?label=rack=1&limit=1', headers: m.auth(m.alice.token) });
    expect(byLabel.json()).toEqual({ items: [all[0]], nextCursor: null });
  });
});

describe('T3 T4 changing interfaces never drops a Space membership silently', () => {
  const patch = (ref: string, payload: Record<string, unknown>) =>
    m.app.inject({ method: 'PATCH', url: `/api/v1/metals/${ref}`, headers: m.auth(m.alice.token), payload });
  const show = async () => (await m.app.inject({ url: '/api/v1/metals/pi-07', headers: m.auth(m.alice.token) })).json();
  beforeEach(async () => {
    expect((await create(m.alice.token, pi())).statusCode).toBe(201);
    for (const [name, phase] of [
      ['os', 1],
      ['apps', 2],
    ] as const) {
      expect((await m.app.inject({ method: 'POST', url: '/api/v1/spaces', headers: m.auth(m.alice.token), payload: { name, phase } })).statusCode).toBe(201);
    }
    const add = (space: string, interfaces: string[], isDefault: boolean) =>
      m.app.inject({ method: 'POST', url: `/api/v1/spaces/${space}/members`, headers: m.auth(m.alice.token), payload: { metal: 'pi-07', interfaces, default: isDefault } });
    expect((await add('os', ['eth0'], true)).statusCode).toBe(201);
    expect((await add('apps', ['eth0', 'wlan0'], false)).statusCode).toBe(201);
  });
  const eth1 = { name: 'eth1', mac: '02:00:00:00:10:01', type: 'ethernet', pxe: true };

  it('refuses with 409 interfaces_in_use naming every Space whose interface would vanish, and changes nothing', async () => {
    const before = await show();
    const r = await patch('pi-07', { name: 'renamed', interfaces: [eth1] });
    expect(r.statusCode).toBe(409);
    expect(r.json().error).toMatchObject({ code: 'interfaces_in_use', field: 'interfaces' });
    expect(r.json().error.message).toMatch(/"os" \(its default Space\): eth0 would vanish/);
    expect(r.json().error.message).toMatch(/"apps": eth0 would vanish, wlan0 would vanish/);
    expect(await show()).toEqual(before);
  });

  it('refuses a change that leaves a Phase 1 Space on an interface that is no longer PXE-capable', async () => {
    const before = await show();
    const r = await patch('pi-07', { interfaces: [{ ...pi().interfaces[0], pxe: false }, pi().interfaces[1]] });
    expect(r.statusCode).toBe(409);
    expect(r.json().error.code).toBe('interfaces_in_use');
    expect(r.json().error.message).toContain('eth0 would no longer be PXE-capable');
    expect(r.json().error.message).not.toContain('"apps"');
    expect(await show()).toEqual(before);
  });

  it('keeps every membership whose interfaces remain (a MAC or type change, an interface added)', async () => {
    const r = await patch('pi-07', { interfaces: [{ name: 'eth0', mac: '02:00:00:00:10:02', type: 'ethernet', pxe: true }, pi().interfaces[1], eth1] });
    expect(r.statusCode).toBe(200);
    expect((await show()).spaces.map((s: { spaceName: string; isDefault: boolean; interfaces: string[] }) => [s.spaceName, s.isDefault, s.interfaces])).toEqual([
      ['apps', false, ['eth0', 'wlan0']],
      ['os', true, ['eth0']],
    ]);
  });

  it('drops the broken memberships only when asked (dropMemberships: true)', async () => {
    const r = await patch('pi-07', { interfaces: [{ ...pi().interfaces[0], pxe: false }, eth1], dropMemberships: true });
    expect(r.statusCode).toBe(200);
    // wlan0 left "apps" (eth0 stays there); "os" lost its PXE interface, so the membership is gone.
    expect((await show()).spaces.map((s: { spaceName: string; interfaces: string[] }) => [s.spaceName, s.interfaces])).toEqual([['apps', ['eth0']]]);
  });

  it('refuses dropMemberships without interfaces, or not a boolean, with 400 naming it', async () => {
    const before = await show();
    for (const payload of [{ name: 'x', dropMemberships: true }, { interfaces: [eth1], dropMemberships: 'yes' }]) {
      const r = await patch('pi-07', payload);
      expect(r.statusCode).toBe(400);
      expect(r.json().error.field).toBe('dropMemberships');
    }
    expect(await show()).toEqual(before);
  });
});
