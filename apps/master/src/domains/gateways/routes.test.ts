import { generateKeyPairSync } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type TestMaster, testMaster } from '../../testing.ts';
import { enrollCommands } from './routes.ts';
import { KyselyGatewayStore } from './store.kysely.ts';
import { GatewayService } from './service.ts';
import { TestGateway } from './test-client.ts';

let m: TestMaster;
beforeEach(async () => {
  m = await testMaster();
});
afterEach(async () => m.close());

const pem = () => generateKeyPairSync('ed25519').publicKey.export({ format: 'pem', type: 'spki' }).toString();
const addGateway = async (token: string, name: string) => m.app.inject({ method: 'POST', url: '/api/v1/gateways', headers: m.auth(token), payload: { name } });
const enroll = (payload: Record<string, unknown>) => m.app.inject({ method: 'POST', url: '/api/gateway/v1/enroll', payload });
const TABLE = '/api/gateway/v1/table';

describe('T11 gateways of an owner', () => {
  it('declares a gateway with a one-time enrollment token, lists and shows it, several per owner', async () => {
    const r = await addGateway(m.alice.token, 'gw-lab');
    expect(r.statusCode).toBe(201);
    const { gateway, enrollmentToken } = r.json();
    expect(gateway).toMatchObject({ id: expect.stringMatching(/^gwy_[0-9a-z]{26}$/), name: 'gw-lab', enrolled: false, connected: false, lastSeenAt: null });
    expect(enrollmentToken).toMatch(/^tge_[A-Za-z0-9_-]{43}$/);
    expect(Date.parse(gateway.enrollmentExpiresAt) - Date.now()).toBeGreaterThan(23.9 * 3600_000);
    expect((await addGateway(m.alice.token, 'gw-hall')).statusCode).toBe(201);
    expect((await addGateway(m.alice.token, 'gw-lab')).json().error.code).toBe('gateway_name_taken');
    const list = (await m.app.inject({ url: '/api/v1/gateways', headers: m.auth(m.alice.token) })).json();
    expect(list.items.map((g: { name: string }) => g.name)).toEqual(['gw-lab', 'gw-hall']);
    expect(JSON.stringify(list)).not.toContain(enrollmentToken);
    const show = await m.app.inject({ url: '/api/v1/gateways/gw-lab', headers: m.auth(m.alice.token) });
    expect(show.json()).toMatchObject({ id: gateway.id, table: null });
  });

  it('T5 answers the enroll commands built from the public URL: plain, and https with --ca', () => {
    const tail = '--token tge_x --data-dir /var/lib/tips-gateway --name gw-lab';
    expect(enrollCommands({ url: 'http://tips.example.com:8080', tlsUrl: 'https://tips.example.com:8443' }, 'tge_x', 'gw-lab')).toEqual({
      master: 'http://tips.example.com:8080',
      command: `tips-gateway enroll --master http://tips.example.com:8080 ${tail}`,
      httpsMaster: 'https://tips.example.com:8443',
      httpsCommand: `tips-gateway enroll --master https://tips.example.com:8443 --ca tips-ca.pem ${tail}`,
    });
    // An https public URL is the one to verify with --ca; without HTTPS there is no --ca form.
    expect(enrollCommands({ url: 'https://tips.example.com', tlsUrl: 'https://localhost:8443' }, 'tge_x', 'gw-lab').httpsMaster).toBe('https://tips.example.com');
    expect(enrollCommands({ url: 'http://10.0.0.5:8080', tlsUrl: null }, 'tge_x', 'gw-lab')).toMatchObject({ httpsMaster: null, httpsCommand: null });
  });

  it('T5 POST /gateways carries the enroll commands with the new token', async () => {
    const r = (await addGateway(m.alice.token, 'gw-lab')).json();
    expect(r.enroll.command).toBe(`tips-gateway enroll --master ${r.enroll.master} --token ${r.enrollmentToken} --data-dir /var/lib/tips-gateway --name gw-lab`);
  });

  it("keeps another owner's gateways invisible (404) and untouchable", async () => {
    const { gateway } = (await addGateway(m.alice.token, 'gw-lab')).json();
    for (const [method, url] of [
      ['GET', `/api/v1/gateways/${gateway.id}`],
      ['DELETE', `/api/v1/gateways/${gateway.id}`],
      ['GET', '/api/v1/gateways/gw-lab'],
    ] as const) {
      const r = await m.app.inject({ method, url, headers: m.auth(m.bob.token) });
      expect(r.statusCode).toBe(404);
      expect(r.json().error.code).toBe('gateway_not_found');
    }
    expect((await m.app.inject({ url: '/api/v1/gateways', headers: m.auth(m.bob.token) })).json().items).toEqual([]);
    expect((await m.app.inject({ url: `/api/v1/gateways/${gateway.id}`, headers: m.auth(m.alice.token) })).statusCode).toBe(200);
  });

  it('stores the latest table snapshot and shows it to the owner', async () => {
    const gw = await TestGateway.enroll(m.app, m.alice.token, 'gw-lab');
    const rows = [
      { mac: '02:00:00:00:00:01', ip: '10.77.0.10', tipsId: null, state: 'pending', type: 'ethernet', gatewayInterface: 'lan0', nat: [] },
      { mac: '02:00:00:00:00:02', ip: '10.77.0.11', tipsId: 'mtl_0000000000000000000000000a', state: 'active', gatewayInterface: 'lan0', nat: [{ protocol: 'tcp', localPort: 5000 }] },
    ];
    expect((await gw.request('PUT', TABLE, { rows })).statusCode).toBe(204);
    expect((await gw.request('PUT', TABLE, { rows: rows.slice(1) })).statusCode).toBe(204);
    const show = (await m.app.inject({ url: '/api/v1/gateways/gw-lab', headers: m.auth(m.alice.token) })).json();
    expect(show).toMatchObject({ enrolled: true, enrolledName: 'gw-lab', table: { rows: rows.slice(1) } });
    expect(show.lastSeenAt).toEqual(expect.any(String));
  });

  it('T11 pages the interface table: the detail holds the first page, /interfaces the rest; a newer table refuses an old cursor (409)', async () => {
    const gw = await TestGateway.enroll(m.app, m.alice.token, 'gw-lab');
    const h = m.auth(m.alice.token);
    const empty = (await m.app.inject({ url: '/api/v1/gateways/gw-lab/interfaces', headers: h })).json();
    expect(empty).toEqual({ updatedAt: null, items: [], nextCursor: null });
    const rows = Array.from({ length: 250 }, (_, i) => ({ mac: `02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`, state: 'active', n: i }));
    expect((await gw.request('PUT', TABLE, { rows })).statusCode).toBe(204);
    const show = (await m.app.inject({ url: '/api/v1/gateways/gw-lab', headers: h })).json();
    expect(show.table).toMatchObject({ rowCount: 250, rows: rows.slice(0, 100), nextCursor: expect.any(String) });
    const walked: unknown[] = [...show.table.rows];
    let cursor: string | null = show.table.nextCursor;
    const sizes: number[] = [];
    while (cursor) {
      const r = await m.app.inject({ url: `/api/v1/gateways/gw-lab/interfaces?limit=60&cursor=${cursor}`, headers: h });
      expect(r.statusCode).toBe(200);
      expect(r.json().updatedAt).toBe(show.table.updatedAt);
      walked.push(...r.json().items);
      sizes.push(r.json().items.length);
      cursor = r.json().nextCursor;
    }
    expect(sizes).toEqual([60, 60, 30]);
    expect(walked).toEqual(rows);
    // The gateway reports a new table: a cursor into the old one would skip or repeat rows.
    const old = (await m.app.inject({ url: '/api/v1/gateways/gw-lab/interfaces?limit=10', headers: h })).json().nextCursor;
    await new Promise((r) => setTimeout(r, 5));
    expect((await gw.request('PUT', TABLE, { rows: rows.slice(0, 20) })).statusCode).toBe(204);
    const stale = await m.app.inject({ url: `/api/v1/gateways/gw-lab/interfaces?cursor=${old}`, headers: h });
    expect(stale.statusCode).toBe(409);
    expect(stale.json().error).toMatchObject({ code: 'table_changed', field: 'cursor' });
    const fresh = (await m.app.inject({ url: '/api/v1/gateways/gw-lab', headers: h })).json();
    expect(fresh.table).toMatchObject({ rowCount: 20, rows: rows.slice(0, 20), nextCursor: null });
    // Another gateway's cursor, a bad limit: 400 naming the field; another owner: 404.
    await TestGateway.enroll(m.app, m.alice.token, 'gw-hall');
    for (const [q, field] of [
      [`cursor=${old}`, 'cursor'],
      ['limit=0', 'limit'],
    ] as const) {
      const r = await m.app.inject({ url: `/api/v1/gateways/gw-hall/interfaces?${q}`, headers: h });
      expect(r.statusCode, q).toBe(400);
      expect(r.json().error.field).toBe(field);
    }
    expect((await m.app.inject({ url: `/api/v1/gateways/${show.id}/interfaces`, headers: m.auth(m.bob.token) })).statusCode).toBe(404);
  });

  it.each([
    [{ rows: 'x' }, 400],
    [{ rows: [1] }, 400],
    [{ rows: [{ ip: '10.0.0.1', state: 'active' }] }, 400],
    [{ rows: Array.from({ length: 10_001 }, () => ({ mac: 'a', state: 's' })) }, 413],
  ])('refuses a malformed or oversize table %#, keeping the previous one', async (body, status) => {
    const gw = await TestGateway.enroll(m.app, m.alice.token, 'gw-lab');
    await gw.request('PUT', TABLE, { rows: [{ mac: '02:00:00:00:00:01', state: 'active' }] });
    const r = await gw.request('PUT', TABLE, body);
    expect(r.statusCode).toBe(status);
    const show = (await m.app.inject({ url: '/api/v1/gateways/gw-lab', headers: m.auth(m.alice.token) })).json();
    expect(show.table.rows).toEqual([{ mac: '02:00:00:00:00:01', state: 'active' }]);
  });

  it('refuses a body above the size limit with 413', async () => {
    const gw = await TestGateway.enroll(m.app, m.alice.token, 'gw-lab');
    const r = await gw.request('PUT', TABLE, { rows: [{ mac: 'a', state: 's', pad: 'x'.repeat(9 * 1024 * 1024) }] });
    expect(r.statusCode).toBe(413);
  });
});

describe('T11 gateway enrollment', () => {
  it('lets exactly one of 10 concurrent enrollments spend a token', async () => {
    const { enrollmentToken } = (await addGateway(m.alice.token, 'gw-lab')).json();
    const results = await Promise.all(Array.from({ length: 10 }, () => enroll({ enrollmentToken, publicKey: pem() })));
    expect(results.filter((r) => r.statusCode === 201)).toHaveLength(1);
    for (const r of results.filter((x) => x.statusCode !== 201)) {
      expect(r.statusCode).toBe(401);
      expect(r.json().error).toEqual({ code: 'enrollment_failed', message: 'the enrollment token is unknown, spent or expired' });
    }
    expect((await enroll({ enrollmentToken, publicKey: pem() })).statusCode).toBe(401);
  });

  it('refuses an expired token', async () => {
    // A token issued 25 hours ago by the same store has expired an hour ago.
    const past = new GatewayService(new KyselyGatewayStore(m.db), { now: () => new Date(Date.now() - 25 * 3600_000) }, { bytes: (n) => crypto.getRandomValues(new Uint8Array(n)) });
    const { enrollmentToken } = await past.create(m.alice.id, { name: 'old' });
    const r = await enroll({ enrollmentToken, publicKey: pem() });
    expect(r.statusCode).toBe(401);
    expect(r.json().error.code).toBe('enrollment_failed');
  });

  it.each([
    [{ enrollmentToken: 'tge_nope', publicKey: 'k' }, 400, 'publicKey'],
    [{ enrollmentToken: 'tge_nope', publicKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'pem', type: 'spki' }).toString() }, 400, 'publicKey'],
    [{ publicKey: 'k' }, 400, 'enrollmentToken'],
  ])('refuses a malformed enrollment %#', async (body, status, field) => {
    const r = await enroll(body);
    expect(r.statusCode).toBe(status);
    expect(r.json().error.field).toBe(field);
  });

  it('refuses an unknown token without saying more', async () => {
    const r = await enroll({ enrollmentToken: `tge_${'A'.repeat(43)}`, publicKey: pem() });
    expect(r.statusCode).toBe(401);
    expect(r.json().error.code).toBe('enrollment_failed');
  });
});

describe('T11 gateway request authentication (TIPS-GW-1)', () => {
  let a: TestGateway;
  let b: TestGateway;
  const table = { rows: [{ mac: '02:00:00:00:00:01', state: 'pending' }] };
  beforeEach(async () => {
    a = await TestGateway.enroll(m.app, m.alice.token, 'gw-a');
    b = await TestGateway.enroll(m.app, m.alice.token, 'gw-b');
  });

  const refused = (r: { statusCode: number; json: () => { error: unknown } }) => {
    expect(r.statusCode).toBe(401);
    expect(r.json().error).toEqual({ code: 'gateway_auth_failed', message: 'gateway authentication failed' });
  };

  it('accepts a correctly signed request', async () => {
    expect((await a.request('PUT', TABLE, table)).statusCode).toBe(204);
  });

  it('refuses a bad signature', async () => {
    const other = generateKeyPairSync('ed25519').privateKey;
    refused(await a.request('PUT', TABLE, table, { key: other }));
  });

  it('refuses a replayed nonce', async () => {
    const body = JSON.stringify(table);
    const headers = a.headers('PUT', TABLE, body);
    expect((await m.app.inject({ method: 'PUT', url: TABLE, headers, payload: body })).statusCode).toBe(204);
    refused(await m.app.inject({ method: 'PUT', url: TABLE, headers, payload: body }));
  });

  it('refuses a timestamp more than 60 s off, in either direction', async () => {
    refused(await a.request('PUT', TABLE, table, { timestamp: Date.now() - 61_000 }));
    refused(await a.request('PUT', TABLE, table, { timestamp: Date.now() + 61_000 }));
  });

  it('refuses a tampered body', async () => {
    refused(await a.request('PUT', TABLE, table, { signedBody: JSON.stringify({ rows: [] }) }));
  });

  it("refuses gateway A's key under gateway B's ID", async () => {
    refused(await a.request('PUT', TABLE, table, { claimId: b.id }));
  });

  it('refuses a signature for another path', async () => {
    const body = JSON.stringify(table);
    const r = await m.app.inject({ method: 'PUT', url: `${TABLE}?x=1`, headers: a.headers('PUT', TABLE, body), payload: body });
    refused(r);
  });

  it('refuses owner tokens on the gateway API and gateway signatures on the owner API', async () => {
    refused(await m.app.inject({ method: 'PUT', url: TABLE, headers: { ...m.auth(m.alice.token), 'content-type': 'application/json' }, payload: JSON.stringify(table) }));
    refused(await m.app.inject({ method: 'POST', url: '/api/gateway/v1/registrations', headers: m.auth(m.adminToken), payload: { mac: '02:00:00:00:00:01', ip: '10.0.0.2', gatewayInterface: 'lan0' } }));
    const r = await m.app.inject({ method: 'GET', url: '/api/v1/gateways', headers: a.headers('GET', '/api/v1/gateways', undefined) });
    expect(r.statusCode).toBe(401);
    expect(r.json().error.code).toBe('unauthenticated');
  });

  it('refuses a removed gateway at once', async () => {
    expect((await a.request('PUT', TABLE, table)).statusCode).toBe(204);
    expect((await m.app.inject({ method: 'DELETE', url: '/api/v1/gateways/gw-a', headers: m.auth(m.alice.token) })).statusCode).toBe(204);
    refused(await a.request('PUT', TABLE, table));
    expect((await b.request('PUT', TABLE, table)).statusCode).toBe(204);
  });
});
