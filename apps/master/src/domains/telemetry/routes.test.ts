import { parseCertsOnlyPkcs7 } from '@tips/trust';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { b64, makeCsr, type TlsTestMaster, tlsTestMaster } from '../../tls/testing.ts';

let m: TlsTestMaster;
beforeEach(async () => {
  m = await tlsTestMaster();
});
afterEach(async () => m.close());

const as = (token: string) => (method: string, url: string, payload?: unknown) => m.app.inject({ method: method as 'GET', url, headers: m.auth(token), payload: payload as object });
async function ok(method: string, url: string, payload?: unknown, status = 200, token = m.alice.token) {
  const r = await as(token)(method, url, payload);
  expect(r.statusCode, r.body).toBe(status);
  return r.statusCode === 204 ? undefined : r.json();
}

async function enrolledMetal(name: string, mac: string, token = m.alice.token) {
  const metal = await ok('POST', '/api/v1/metals', { name, interfaces: [{ name: 'eth0', mac, type: 'ethernet', pxe: true }] }, 201, token);
  const s = await ok('POST', '/api/v1/enrollment/secrets', { metal: metal.id }, 201, token);
  const csr = await makeCsr({ uris: [`urn:tips:metal:${metal.id}`] });
  const r = await m.https('POST', '/.well-known/est/simpleenroll', {
    headers: { 'content-type': 'application/pkcs10', authorization: `Basic ${Buffer.from(`${s.id}:${s.secret}`).toString('base64')}` },
    body: b64(csr.der),
  });
  expect(r.status).toBe(200);
  const [cert] = parseCertsOnlyPkcs7(new Uint8Array(Buffer.from(r.body, 'base64')));
  const tls = { cert: cert!.toString('pem'), key: csr.keyPem };
  const t = await m.https('POST', '/api/metal/v1/tokens/issue', tls);
  expect(t.status, t.body).toBe(201);
  const pop = { authorization: `PoP ${t.json().cwt}`, 'content-type': 'application/json' };
  const post = (path: string, body: unknown, headers: Record<string, string> = pop) => m.https('POST', `/api/metal/v1${path}`, { ...tls, headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { id: metal.id as string, name, post };
}

const samples = async () => (await m.db.selectFrom('telemetry_samples').select(['id', 'metal_id', 'values_json']).orderBy('received_at').execute()).length;

describe('issue 11 information exchange: metals post telemetry over mTLS + PoP; an application token reads one device', () => {
  it('S6: a metal posts telemetry and heartbeats; bad input is a 400 naming the field and stores nothing; bursts get 429 + Retry-After', async () => {
    const pi = await enrolledMetal('pi-1', '02:00:00:00:01:01');
    const at = new Date().toISOString();
    const r = await pi.post('/telemetry', { at, values: { temp: 41.5, fan: true, mode: 'eco' } });
    expect(r.status, r.body).toBe(202);
    expect((await pi.post('/heartbeat', { at, values: { uptime: 12 } })).status).toBe(204);

    for (const [body, field] of [
      [{ at: 'yesterday', values: {} }, 'at'],
      [{ at, values: { '9lives': 1 } }, 'values.9lives'],
      [{ at, values: { x: 'y'.repeat(257) } }, 'values.x'],
      [{ at, values: { x: [1] } }, 'values.x'],
      [{ at, values: {}, extra: 1 }, 'extra'],
      [{ at, values: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, i])) }, 'values'],
    ] as const) {
      const bad = await pi.post('/telemetry', body);
      expect(bad.status, JSON.stringify(body)).toBe(400);
      expect(bad.json().error.field).toBe(field);
    }
    expect((await pi.post('/telemetry', { at, values: { blob: 'z'.repeat(250) }, pad: 'x'.repeat(5000) })).status).toBe(413);
    // Without the PoP token the metal API refuses, as for every other metal route.
    expect((await pi.post('/telemetry', { at, values: {} }, { 'content-type': 'application/json' })).status).toBe(401);
    expect(await samples()).toBe(1);

    let limited: Awaited<ReturnType<typeof pi.post>> | undefined;
    for (let i = 0; i < 25 && !limited; i++) {
      const x = await pi.post('/telemetry', { at, values: { i } });
      if (x.status === 429) limited = x;
      else expect(x.status).toBe(202);
    }
    expect(limited?.json().error.code).toBe('rate_limited');
    expect(Number(limited?.headers['retry-after'])).toBeGreaterThan(0);
    const stored = await samples();
    m.clock.advance(60_000);
    expect((await pi.post('/telemetry', { at, values: { after: 1 } })).status).toBe(202);
    expect(await samples()).toBe(stored + 1);
  });

  it('S11: an application token reads its one device (telemetry, paged + since, heartbeat and profile) and gets 403 everywhere else; revoked or expired it is 401', async () => {
    const pi = await enrolledMetal('pi-1', '02:00:00:00:01:01');
    const other = await enrolledMetal('pi-2', '02:00:00:00:02:01');
    const bobs = await enrolledMetal('bob-1', '02:00:00:00:03:01', m.bob.token);
    const t0 = new Date().toISOString();
    for (let i = 0; i < 3; i++) {
      m.clock.advance(1000);
      expect((await pi.post('/telemetry', { at: t0, values: { i } })).status).toBe(202);
    }
    expect((await other.post('/telemetry', { at: t0, values: { secret: 'other device' } })).status).toBe(202);
    expect((await pi.post('/heartbeat', { at: t0, values: { uptime: 99 } })).status).toBe(204);

    // Minting: bad scope, bad TTL, unknown metal are refused and mint nothing.
    expect((await as(m.alice.token)('POST', '/api/v1/app-tokens', { metal: pi.id, scope: ['telemetry:write'] })).json().error).toMatchObject({ code: 'invalid_app_token', field: 'scope' });
    expect((await as(m.alice.token)('POST', '/api/v1/app-tokens', { metal: pi.id, scope: ['telemetry:read'], ttlSeconds: 5 })).statusCode).toBe(400);
    expect((await as(m.alice.token)('POST', '/api/v1/app-tokens', { metal: bobs.id, scope: ['telemetry:read'] })).statusCode).toBe(404);
    expect((await ok('GET', '/api/v1/app-tokens')).items).toEqual([]);

    const minted = await ok('POST', '/api/v1/app-tokens', { metal: 'pi-1', scope: ['telemetry:read'], ttlSeconds: 3600 }, 201);
    expect(minted).toMatchObject({ metalId: pi.id, scope: ['telemetry:read'], name: 'app-pi-1' });
    expect(minted.secret).toMatch(/^tipsapp_/);
    const listed = (await ok('GET', '/api/v1/app-tokens')).items;
    expect(listed).toEqual([{ id: minted.id, metalId: pi.id, name: 'app-pi-1', scope: ['telemetry:read'], createdAt: minted.createdAt, expiresAt: minted.expiresAt }]);
    expect(JSON.stringify(await m.db.selectFrom('telemetry_app_tokens').selectAll().execute())).not.toContain(minted.secret);
    expect(m.logs.join('')).not.toContain(minted.secret);

    const app = as(minted.secret);
    const page1 = await app('GET', `/api/v1/metals/${pi.id}/telemetry?limit=2`);
    expect(page1.statusCode, page1.body).toBe(200);
    expect(page1.json().items.map((s: { values: { i: number } }) => s.values.i)).toEqual([0, 1]);
    const page2 = (await app('GET', `/api/v1/metals/${pi.id}/telemetry?limit=2&cursor=${page1.json().nextCursor}`)).json();
    expect(page2).toMatchObject({ items: [{ values: { i: 2 } }], nextCursor: null });
    const since = (await app('GET', `/api/v1/metals/pi-1/telemetry?since=${encodeURIComponent(page1.json().items[1].receivedAt)}`)).json();
    expect(since.items.map((s: { values: { i: number } }) => s.values.i)).toEqual([2]);
    expect((await app('GET', `/api/v1/metals/${pi.id}/telemetry?since=yesterday`)).json().error).toMatchObject({ code: 'invalid_telemetry', field: 'since' });
    const hb = (await app('GET', `/api/v1/metals/${pi.id}/heartbeat`)).json();
    expect(hb).toMatchObject({ metal: { id: pi.id, name: 'pi-1' }, heartbeat: { values: { uptime: 99 } }, profile: null });

    // Another device of the same owner: 403; another owner's: 404 (as if it did not exist).
    expect((await app('GET', `/api/v1/metals/${other.id}/telemetry`)).statusCode).toBe(403);
    expect((await app('GET', `/api/v1/metals/${other.id}/heartbeat`)).statusCode).toBe(403);
    expect((await app('GET', `/api/v1/metals/${bobs.id}/telemetry`)).statusCode).toBe(404);
    // Every other route of the owner's API: 403, and nothing changes.
    for (const [method, url, body] of [
      ['GET', '/api/v1/me'],
      ['GET', '/api/v1/metals'],
      ['GET', `/api/v1/metals/${pi.id}`],
      ['GET', `/api/v1/metals/${pi.id}/events`],
      ['GET', '/api/v1/app-tokens'],
      ['POST', '/api/v1/app-tokens', { metal: pi.id, scope: ['telemetry:read'] }],
      ['DELETE', `/api/v1/app-tokens/${minted.id}`],
      ['POST', '/api/v1/tokens', { name: 'escalate' }],
      ['DELETE', `/api/v1/metals/${pi.id}`],
    ] as const) {
      const r = await app(method, url, body);
      expect(r.statusCode, `${method} ${url}`).toBe(403);
      expect(r.json().error.code).toBe('forbidden');
    }
    expect((await ok('GET', '/api/v1/app-tokens')).items).toHaveLength(1);
    expect((await ok('GET', '/api/v1/tokens')).items).toHaveLength(1);
    // The owner reads the same data with an owner token.
    expect((await ok('GET', `/api/v1/metals/${other.id}/telemetry`)).items[0].values).toEqual({ secret: 'other device' });

    // Revoked: 401 at once. Expired: 401.
    await ok('DELETE', `/api/v1/app-tokens/${minted.id}`, undefined, 204);
    expect((await app('GET', `/api/v1/metals/${pi.id}/telemetry`)).statusCode).toBe(401);
    expect((await as(m.alice.token)('DELETE', `/api/v1/app-tokens/${minted.id}`)).statusCode).toBe(404);
    const short = await ok('POST', '/api/v1/app-tokens', { metal: pi.id, scope: ['telemetry:read'], ttlSeconds: 60 }, 201);
    expect((await as(short.secret)('GET', `/api/v1/metals/${pi.id}/heartbeat`)).statusCode).toBe(200);
    m.clock.advance(61_000);
    expect((await as(short.secret)('GET', `/api/v1/metals/${pi.id}/heartbeat`)).statusCode).toBe(401);
    // Bob's tokens never list or revoke Alice's.
    expect((await ok('GET', '/api/v1/app-tokens', undefined, 200, m.bob.token)).items).toEqual([]);
    expect((await as(m.bob.token)('DELETE', `/api/v1/app-tokens/${short.id}`)).statusCode).toBe(404);
  });
});
