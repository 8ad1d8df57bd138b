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

  it('refuses a MAC held by another metal: names the holder to its owner only', async () => {
    expect((await create(m.alice.token, pi())).statusCode).toBe(201);
    const mine = await create(m.alice.token, pi({ name: 'pi-08' }));
    expect(mine.statusCode).toBe(409);
    expect(mine.json().error.code).toBe('mac_taken');
    expect(mine.json().error.message).toContain('pi-07');
    const theirs = await create(m.bob.token, pi({ name: 'bobs' }));
    expect(theirs.statusCode).toBe(409);
    expect(theirs.json().error.code).toBe('mac_taken');
    expect(theirs.json().error.message).not.toContain('pi-07');
    expect((await m.app.inject({ url: '/api/v1/metals', headers: m.auth(m.bob.token) })).json().items).toEqual([]);
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
    // The freed MAC can now be used by someone else.
    expect((await create(m.bob.token, pi({ name: 'b', interfaces: [{ name: 'w', mac: 'dc:a6:32:01:02:04', type: 'wifi' }] }))).statusCode).toBe(201);
  });

  it('deletes a metal and frees its MACs', async () => {
    await create(m.alice.token, pi());
    expect((await m.app.inject({ method: 'DELETE', url: '/api/v1/metals/pi-07', headers: m.auth(m.alice.token) })).statusCode).toBe(204);
    expect((await create(m.bob.token, pi())).statusCode).toBe(201);
  });
});
