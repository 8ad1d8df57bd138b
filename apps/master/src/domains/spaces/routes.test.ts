import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type TestMaster, testMaster } from '../../testing.ts';

let m: TestMaster;
let h: Record<string, string>;
beforeEach(async () => {
  m = await testMaster();
  h = m.auth(m.alice.token);
  await m.app.inject({
    method: 'POST',
    url: '/api/v1/metals',
    headers: h,
    payload: {
      name: 'pi-07',
      interfaces: [
        { name: 'eth0', mac: 'dc:a6:32:01:02:03', type: 'ethernet', pxe: true },
        { name: 'wlan0', mac: 'dc:a6:32:01:02:04', type: 'wifi' },
      ],
    },
  });
});
afterEach(async () => m.close());

const space = async (name: string, phase: unknown, token = m.alice.token) =>
  m.app.inject({ method: 'POST', url: '/api/v1/spaces', headers: m.auth(token), payload: { name, phase } });
const add = (s: string, body: Record<string, unknown>) => m.app.inject({ method: 'POST', url: `/api/v1/spaces/${s}/members`, headers: h, payload: body });

describe('T4 Spaces', () => {
  it('creates Spaces of phase 1, 2 and 3 and refuses any other phase', async () => {
    for (const p of [1, 2, 3]) expect((await space(`s${p}`, p)).statusCode).toBe(201);
    for (const p of [0, 4, '1', 1.5]) {
      const r = await space(`bad${String(p)}`, p);
      expect(r.statusCode).toBe(400);
      expect(r.json().error.field).toBe('phase');
    }
    expect((await m.app.inject({ url: '/api/v1/spaces?phase=2', headers: h })).json().items.map((s: { name: string }) => s.name)).toEqual(['s2']);
  });

  it('makes a Phase 1 Space the default over one PXE interface and shows it on the metal', async () => {
    await space('base-os', 1);
    const r = await add('base-os', { metal: 'pi-07', interfaces: ['eth0'], default: true });
    expect(r.statusCode).toBe(201);
    expect(r.json()).toEqual({ spaceId: expect.stringMatching(/^spc_/), metalId: expect.stringMatching(/^mtl_/), interfaces: ['eth0'], isDefault: true });
    expect((await m.app.inject({ url: '/api/v1/spaces/base-os', headers: h })).json().members).toEqual([
      { metalId: expect.stringMatching(/^mtl_/), interfaces: ['eth0'], isDefault: true },
    ]);
    const metal = (await m.app.inject({ url: '/api/v1/metals/pi-07', headers: h })).json();
    expect(metal.spaces).toEqual([{ spaceId: expect.stringMatching(/^spc_/), spaceName: 'base-os', phase: 1, interfaces: ['eth0'], isDefault: true }]);
  });

  it('refuses a default on a Phase 2 Space with 422 default_space_must_be_phase1', async () => {
    await space('apps', 2);
    const r = await add('apps', { metal: 'pi-07', interfaces: ['wlan0'], default: true });
    expect(r.statusCode).toBe(422);
    expect(r.json().error.code).toBe('default_space_must_be_phase1');
    expect((await m.app.inject({ url: '/api/v1/spaces/apps', headers: h })).json().members).toEqual([]);
  });

  it('keeps exactly one default per metal: a new default replaces the old', async () => {
    await space('os-a', 1);
    await space('os-b', 1);
    await add('os-a', { metal: 'pi-07', interfaces: ['eth0'], default: true });
    await add('os-b', { metal: 'pi-07', interfaces: ['eth0'], default: true });
    const spaces = (await m.app.inject({ url: '/api/v1/metals/pi-07', headers: h })).json().spaces;
    expect(spaces.filter((s: { isDefault: boolean }) => s.isDefault).map((s: { spaceName: string }) => s.spaceName)).toEqual(['os-b']);
  });

  it('puts a metal in several Spaces, with several interfaces in a Phase 2 Space (multi-homing)', async () => {
    await space('base-os', 1);
    await space('apps', 2);
    await add('base-os', { metal: 'pi-07', interfaces: ['eth0'], default: true });
    const r = await add('apps', { metal: 'pi-07', interfaces: ['eth0', 'wlan0'] });
    expect(r.statusCode).toBe(201);
    expect((await m.app.inject({ url: '/api/v1/metals/pi-07', headers: h })).json().spaces).toHaveLength(2);
  });

  it.each([
    [{ metal: 'pi-07', interfaces: ['wlan0'] }, 422, 'phase1_needs_one_pxe_interface'],
    [{ metal: 'pi-07', interfaces: ['eth0', 'wlan0'] }, 422, 'phase1_needs_one_pxe_interface'],
    [{ metal: 'pi-07', interfaces: ['eth9'] }, 422, 'interface_not_found'],
    [{ metal: 'nope', interfaces: ['eth0'] }, 404, 'metal_not_found'],
    [{ metal: 'pi-07', interfaces: ['eth0'], extra: true }, 400, 'validation_failed'],
  ])('refuses membership %j with %i %s', async (body, status, code) => {
    await space('base-os', 1);
    const r = await add('base-os', body);
    expect(r.statusCode).toBe(status);
    expect(r.json().error.code).toBe(code);
    expect((await m.app.inject({ url: '/api/v1/spaces/base-os', headers: h })).json().members).toEqual([]);
  });

  it("hides another owner's Space and metal (404)", async () => {
    const bobs = (await space('bobs', 1, m.bob.token)).json();
    expect((await m.app.inject({ url: `/api/v1/spaces/${bobs.id}`, headers: h })).statusCode).toBe(404);
    const r = await m.app.inject({ method: 'POST', url: `/api/v1/spaces/${bobs.id}/members`, headers: h, payload: { metal: 'pi-07', interfaces: ['eth0'] } });
    expect(r.statusCode).toBe(404);
    const metal = (await m.app.inject({ url: '/api/v1/metals/pi-07', headers: h })).json();
    const bobTry = await m.app.inject({ method: 'POST', url: '/api/v1/spaces/bobs/members', headers: m.auth(m.bob.token), payload: { metal: metal.id, interfaces: ['eth0'] } });
    expect(bobTry.statusCode).toBe(404);
    expect(bobTry.json().error.code).toBe('metal_not_found');
  });

  it('drops memberships when the metal goes away, or the linking interface with dropMemberships', async () => {
    await space('apps', 2);
    await add('apps', { metal: 'pi-07', interfaces: ['eth0', 'wlan0'] });
    const patch = (extra: Record<string, unknown>) =>
      m.app.inject({
        method: 'PATCH',
        url: '/api/v1/metals/pi-07',
        headers: h,
        payload: { interfaces: [{ name: 'eth0', mac: 'dc:a6:32:01:02:03', type: 'ethernet', pxe: true }], ...extra },
      });
    expect((await patch({})).json().error.code).toBe('interfaces_in_use');
    expect((await m.app.inject({ url: '/api/v1/spaces/apps', headers: h })).json().members[0].interfaces).toEqual(['eth0', 'wlan0']);
    expect((await patch({ dropMemberships: true })).statusCode).toBe(200);
    expect((await m.app.inject({ url: '/api/v1/spaces/apps', headers: h })).json().members[0].interfaces).toEqual(['eth0']);
    await m.app.inject({ method: 'DELETE', url: '/api/v1/metals/pi-07', headers: h });
    expect((await m.app.inject({ url: '/api/v1/spaces/apps', headers: h })).json().members).toEqual([]);
  });
});

describe('T4 Space members are paged (issue 10: lists that scale)', () => {
  const member = (n: number) => ({
    name: `m-${String(n).padStart(3, '0')}`,
    interfaces: [
      { name: 'eth0', mac: `02:00:00:00:${String(n >> 8).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`, type: 'ethernet' as const, pxe: true },
      { name: 'wlan0', mac: `02:00:00:01:${String(n >> 8).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`, type: 'wifi' as const },
    ],
  });
  const fill = async (spaceName: string, count: number) => {
    const ids: string[] = [];
    for (let n = 0; n < count; n++) {
      const metal = await m.services.metals.create(m.alice.id, member(n));
      await m.services.spaces.addMember(m.alice.id, spaceName, { metal: metal.id, interfaces: ['eth0', 'wlan0'] });
      ids.push(metal.id);
    }
    return ids.sort();
  };

  it('walks every member exactly once, by metal ID, never splitting a member across pages', async () => {
    await space('apps', 2);
    const ids = await fill('apps', 7);
    const seen: string[] = [];
    const sizes: number[] = [];
    let cursor: string | null = null;
    do {
      const r = await m.app.inject({ url: `/api/v1/spaces/apps/members?limit=3${cursor ? `&cursor=${cursor}` : ''}`, headers: h });
      expect(r.statusCode).toBe(200);
      const page = r.json() as { items: { metalId: string; interfaces: string[]; isDefault: boolean }[]; nextCursor: string | null };
      for (const it of page.items) expect(it).toEqual({ metalId: it.metalId, interfaces: ['eth0', 'wlan0'], isDefault: false });
      seen.push(...page.items.map((i) => i.metalId));
      sizes.push(page.items.length);
      cursor = page.nextCursor;
    } while (cursor);
    expect(sizes).toEqual([3, 3, 1]);
    expect(seen).toEqual(ids);
    // The detail shows the first page, and says it is all of them.
    const detail = (await m.app.inject({ url: '/api/v1/spaces/apps', headers: h })).json();
    expect(detail.members.map((x: { metalId: string }) => x.metalId)).toEqual(ids);
    expect(detail.membersNextCursor).toBeNull();
  });

  it('the detail holds at most one page; its cursor continues on /members', async () => {
    await space('big', 2);
    const ids = await fill('big', 101);
    const detail = (await m.app.inject({ url: '/api/v1/spaces/big', headers: h })).json();
    expect(detail.members).toHaveLength(100);
    expect(detail.membersNextCursor).toEqual(expect.any(String));
    const rest = (await m.app.inject({ url: `/api/v1/spaces/big/members?cursor=${detail.membersNextCursor}`, headers: h })).json();
    expect([...detail.members, ...rest.items].map((x: { metalId: string }) => x.metalId)).toEqual(ids);
    expect(rest.nextCursor).toBeNull();
  });

  it('refuses a bad limit, a damaged cursor or one of another Space with 400 naming the field; hides other owners (404)', async () => {
    await space('a', 2);
    await space('b', 2);
    await fill('a', 2);
    const first = (await m.app.inject({ url: '/api/v1/spaces/a/members?limit=1', headers: h })).json();
    expect(first.nextCursor).toEqual(expect.any(String));
    for (const [q, field] of [
      ['limit=0', 'limit'],
      ['limit=1001', 'limit'],
      ['limit=x', 'limit'],
      ['cursor=AAAA', 'cursor'],
      [`cursor=${first.nextCursor}`, 'cursor'],
    ] as const) {
      const r = await m.app.inject({ url: `/api/v1/spaces/b/members?${q}`, headers: h });
      expect(r.statusCode, q).toBe(400);
      expect(r.json().error.field, q).toBe(field);
    }
    expect((await m.app.inject({ url: '/api/v1/spaces/a/members', headers: m.auth(m.bob.token) })).statusCode).toBe(404);
  });
});
