import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestMaster, testMaster } from './testing.ts';

let m: TestMaster;
beforeAll(async () => {
  m = await testMaster();
});
afterAll(async () => m.close());

describe('T1 T2 master operational surface', () => {
  it('serves health, readiness and Prometheus metrics', async () => {
    expect((await m.app.inject({ url: '/healthz' })).json()).toEqual({ status: 'ok' });
    expect((await m.app.inject({ url: '/readyz' })).statusCode).toBe(200);
    await m.app.inject({ url: '/api/v1/metals', headers: m.auth(m.alice.token) });
    const metrics = await m.app.inject({ url: '/metrics' });
    expect(metrics.headers['content-type']).toContain('text/plain');
    expect(metrics.body).toMatch(/tips_master_http_requests_total\{method="GET",route="\/api\/v1\/metals",status="200"\} \d+/);
  });

  it('serves an OpenAPI 3 document describing the three audiences and every owner route', async () => {
    const doc = (await m.app.inject({ url: '/openapi.json' })).json();
    expect(doc.openapi).toMatch(/^3\./);
    for (const p of ['/api/v1/metals', '/api/v1/metals/{ref}', '/api/v1/spaces/{ref}/members', '/api/v1/glazes', '/api/v1/glazes/{ref}/content']) {
      expect(Object.keys(doc.paths)).toContain(p);
    }
    expect(doc.paths['/api/v1/metals'].post.requestBody).toBeDefined();
    expect((await m.app.inject({ url: '/docs' })).statusCode).toBeLessThan(400);
  });

  it('echoes a request id and puts it in every error body', async () => {
    const r = await m.app.inject({ url: '/api/v1/metals/nope', headers: { ...m.auth(m.alice.token), 'x-request-id': 'trace-123' } });
    expect(r.headers['x-request-id']).toBe('trace-123');
    expect(r.json()).toEqual({ error: { code: 'metal_not_found', message: 'no metal "nope"', field: 'metal' }, requestId: 'trace-123' });
    const unknown = await m.app.inject({ url: '/api/v2/x' });
    expect(unknown.json().error.code).toBe('route_not_found');
  });

  it('rejects malformed JSON with a clear code', async () => {
    const r = await m.app.inject({ method: 'POST', url: '/api/v1/spaces', headers: { ...m.auth(m.alice.token), 'content-type': 'application/json' }, payload: '{"name":' });
    expect(r.statusCode).toBe(400);
    expect(r.json().error.code).toBe('invalid_json');
  });

  it('lets only an admin create owners; tokens are shown once and stored hashed', async () => {
    const denied = await m.app.inject({ method: 'POST', url: '/api/v1/owners', headers: m.auth(m.alice.token), payload: { name: 'carol' } });
    expect(denied.statusCode).toBe(403);
    const ok = await m.app.inject({ method: 'POST', url: '/api/v1/owners', headers: m.auth(m.adminToken), payload: { name: 'carol' } });
    expect(ok.statusCode).toBe(201);
    const token: string = ok.json().token;
    expect((await m.app.inject({ url: '/api/v1/me', headers: m.auth(token) })).json().name).toBe('carol');
    const rows = await m.db.selectFrom('api_tokens').select('token_hash').execute();
    expect(rows.some((r) => r.token_hash.includes(token) || token.includes(r.token_hash))).toBe(false);
    const listed = await m.app.inject({ url: '/api/v1/tokens', headers: m.auth(token) });
    expect(JSON.stringify(listed.json())).not.toContain(token);
    const id = listed.json().items[0].id;
    expect((await m.app.inject({ method: 'DELETE', url: `/api/v1/tokens/${id}`, headers: m.auth(token) })).statusCode).toBe(204);
    expect((await m.app.inject({ url: '/api/v1/me', headers: m.auth(token) })).statusCode).toBe(401);
  });
});
