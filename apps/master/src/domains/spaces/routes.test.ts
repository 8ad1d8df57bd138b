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
