import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type TestMaster, testMaster } from '../../testing.ts';

let m: TestMaster;
beforeEach(async () => {
  m = await testMaster();
});
afterEach(async () => m.close());

const call = (method: string, url: string, token = m.alice.token) => m.app.inject({ method: method as 'GET', url, headers: m.auth(token) });

describe('S13 owner API: DTLS PSK credentials of a metal (CONTRACT F)', () => {
  it('issues a key shown once, lists identities without keys, revokes; the database holds the key only sealed', async () => {
    const metal = (await m.app.inject({ method: 'POST', url: '/api/v1/metals', headers: m.auth(m.alice.token), payload: { name: 'sensor-1', interfaces: [{ name: 'eth0', mac: '02:00:00:00:51:01', type: 'ethernet' }] } })).json();
    const a = await call('POST', '/api/v1/metals/sensor-1/psk');
    expect(a.statusCode, a.body).toBe(201);
    const cred = a.json();
    expect(cred.identity).toBe(`${metal.id}.1`);
    expect(cred.key).toMatch(/^[0-9a-f]{32}$/);
    const b = (await call('POST', `/api/v1/metals/${metal.id}/psk`)).json();
    expect(b.identity).toBe(`${metal.id}.2`);
    expect(b.key).not.toBe(cred.key);

    const list = await call('GET', '/api/v1/metals/sensor-1/psk');
    expect(list.statusCode).toBe(200);
    expect(list.json().items.map((i: { identity: string }) => i.identity)).toEqual([cred.identity, b.identity]);
    expect(list.body).not.toContain(cred.key);
    const rows = await m.db.selectFrom('constrained_psks').selectAll().execute();
    expect(rows).toHaveLength(2);
    for (const r of rows) {
      expect(Buffer.from(r.sealed_key, 'base64').toString('hex')).not.toContain(cred.key);
      expect(Buffer.from(r.sealed_key, 'base64').toString('hex')).not.toContain(b.key);
    }
    // A row moved to another identity does not open (the identity is the AEAD's associated data).
    await m.db.updateTable('constrained_psks').set({ sealed_key: rows.find((r) => r.identity === cred.identity)!.sealed_key }).where('identity', '=', b.identity).execute();
    expect(await m.services.constrained.pskLookup(b.identity)).toBeUndefined();
    expect(Buffer.from((await m.services.constrained.pskLookup(cred.identity))!).toString('hex')).toBe(cred.key);

    expect((await call('DELETE', `/api/v1/metals/sensor-1/psk/${cred.identity}`)).statusCode).toBe(204);
    const again = await call('DELETE', `/api/v1/metals/sensor-1/psk/${cred.identity}`);
    expect(again.statusCode).toBe(404);
    expect(again.json().error).toMatchObject({ code: 'psk_not_found', field: 'identity' });
    expect((await call('GET', '/api/v1/metals/sensor-1/psk')).json().items[0].revokedAt).not.toBeNull();
    expect(await m.services.constrained.pskLookup(cred.identity)).toBeUndefined();
  });

  it("another owner's metal is 404 and gets no credential; at most 4 live PSKs (409); a retired metal gets none (403)", async () => {
    await m.app.inject({ method: 'POST', url: '/api/v1/metals', headers: m.auth(m.alice.token), payload: { name: 'sensor-1', interfaces: [{ name: 'eth0', mac: '02:00:00:00:51:01', type: 'ethernet' }] } });
    const bob = await call('POST', '/api/v1/metals/sensor-1/psk', m.bob.token);
    expect(bob.statusCode).toBe(404);
    expect((await call('DELETE', '/api/v1/metals/sensor-1/psk/x.1', m.bob.token)).statusCode).toBe(404);
    for (let i = 0; i < 4; i++) expect((await call('POST', '/api/v1/metals/sensor-1/psk')).statusCode).toBe(201);
    const full = await call('POST', '/api/v1/metals/sensor-1/psk');
    expect(full.statusCode).toBe(409);
    expect(full.json().error.code).toBe('psk_limit_reached');
    expect((await call('GET', '/api/v1/metals/sensor-1/psk')).json().items).toHaveLength(4);
    expect((await call('POST', '/api/v1/metals/sensor-1/retire')).statusCode).toBe(200);
    const retired = await call('POST', '/api/v1/metals/sensor-1/psk');
    expect(retired.statusCode).toBe(403);
    expect(retired.json().error.code).toBe('metal_retired');
    const live = (await call('GET', '/api/v1/metals/sensor-1/psk')).json().items[0].identity;
    expect(await m.services.constrained.pskLookup(live)).toBeUndefined();
  });

  it('deleting the metal forgets its PSKs', async () => {
    await m.app.inject({ method: 'POST', url: '/api/v1/metals', headers: m.auth(m.alice.token), payload: { name: 'sensor-1', interfaces: [{ name: 'eth0', mac: '02:00:00:00:51:01', type: 'ethernet' }] } });
    const cred = (await call('POST', '/api/v1/metals/sensor-1/psk')).json();
    expect((await call('DELETE', '/api/v1/metals/sensor-1')).statusCode).toBe(204);
    expect(await m.db.selectFrom('constrained_psks').selectAll().execute()).toEqual([]);
    expect(await m.services.constrained.pskLookup(cred.identity)).toBeUndefined();
  });
});
