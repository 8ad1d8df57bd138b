import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Db } from '../db/database.ts';
import { type TestMaster, testMaster } from '../testing.ts';

/**
 * The owner API under hostile input, on both stores: every route of /api/v1 (taken from the
 * OpenAPI document, so a new route is covered the day it is added) gets NUL bytes, broken
 * percent-encoding, huge strings, wrong types, unknown fields, the wrong Content-Type and bad
 * JSON. Every answer is a 4xx in the one error shape, and the database is exactly as before.
 */

type Method = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
type Op = { method: Method; path: string; params: string[]; query: string[]; body?: { properties: Record<string, { type?: string; anyOf?: { type?: string }[] }> } };

const ERROR_KEYS = ['error', 'requestId'];

function expectOneShape(status: number, json: unknown, what: string): void {
  expect(status, what).toBeGreaterThanOrEqual(400);
  expect(status, what).toBeLessThan(500);
  const j = json as { error: Record<string, unknown>; requestId: unknown };
  expect(Object.keys(j).sort(), what).toEqual(ERROR_KEYS);
  expect(typeof j.requestId, what).toBe('string');
  expect(typeof j.error.code, what).toBe('string');
  expect(typeof j.error.message, what).toBe('string');
  for (const k of Object.keys(j.error)) expect(['code', 'message', 'field'], what).toContain(k);
  if ('field' in j.error) expect(typeof j.error.field, what).toBe('string');
}

/** Every row of every table, except the one column authentication itself writes (a token's last use). */
async function snapshot(db: Db): Promise<string> {
  const tables = (await db.introspection.getTables()).map((t) => t.name).filter((n) => !n.startsWith('kysely_') && n !== 'gateway_nonces').sort();
  const out: Record<string, string[]> = {};
  for (const t of tables) {
    const rows = await db.selectFrom(t as 'owners').selectAll().execute();
    out[t] = rows.map((r) => JSON.stringify({ ...r, last_used_at: undefined })).sort();
  }
  return JSON.stringify(out);
}

function wrongType(schema: { type?: string } | undefined): unknown {
  switch (schema?.type) {
    case 'integer':
    case 'number':
      return '1';
    case 'boolean':
      return 'yes';
    case 'array':
      return { not: 'an array' };
    case 'object':
      return ['not', 'an', 'object'];
    default:
      return 12345;
  }
}

const adapters: [string, () => string | undefined][] = [
  ['SQLite', () => undefined],
  ['PostgreSQL', () => inject('pgUrl')],
];

describe.each(adapters)('T2 T3 D4 the owner API refuses hostile input on %s: 4xx, one error shape, nothing changed', (_name, pgUrl) => {
  let m: TestMaster;
  let ops: Op[];
  const refs: Record<string, string> = {};

  beforeAll(async () => {
    m = await testMaster({ pgUrl: pgUrl() });
    const h = { ...m.auth(m.alice.token), 'content-type': 'application/json' };
    const post = async (url: string, payload: unknown) => {
      const r = await m.app.inject({ method: 'POST', url, headers: h, payload: JSON.stringify(payload) });
      expect(r.statusCode, `${url} ${r.body}`).toBeLessThan(300);
      return r.json();
    };
    refs.metals = (await post('/api/v1/metals', { name: 'pi', interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:01', type: 'ethernet', pxe: true }] })).id;
    refs.spaces = (await post('/api/v1/spaces', { name: 'base', phase: 1 })).id;
    refs.gateways = (await post('/api/v1/gateways', { name: 'gw' })).gateway?.id ?? 'gw';
    refs.keys = (await post('/api/v1/keys', { name: 'k1', serverHeld: true })).id;
    refs.tokens = (await post('/api/v1/tokens', { name: 'ci' })).id;
    const up = await m.app.inject({ method: 'POST', url: '/api/v1/glazes?name=img', headers: { ...m.auth(m.alice.token), 'content-type': 'application/octet-stream' }, payload: Buffer.from('image') });
    refs.glazes = up.json().id;
    const doc = (await m.app.inject({ url: '/openapi.json' })).json() as { paths: Record<string, Record<string, Record<string, unknown>>> };
    ops = [];
    for (const [path, methods] of Object.entries(doc.paths)) {
      if (!path.startsWith('/api/v1/')) continue;
      for (const [method, op] of Object.entries(methods)) {
        const parameters = (op.parameters ?? []) as { in: string; name: string }[];
        const body = (op.requestBody as { content?: Record<string, { schema: Op['body'] }> } | undefined)?.content?.['application/json']?.schema;
        ops.push({ method: method.toUpperCase() as Method, path, params: parameters.filter((p) => p.in === 'path').map((p) => p.name), query: parameters.filter((p) => p.in === 'query').map((p) => p.name), body });
      }
    }
  });
  afterAll(async () => m?.close());

  /** A path with every parameter a real object of the right kind (so the hostile part is what is refused), or `value` for `param`. */
  function url(op: Op, param?: string, value?: string): string {
    return op.path.replace(/\{(\w+)\}/g, (_all, name: string) => {
      if (name === param) return value!;
      const before = op.path.slice(0, op.path.indexOf(`{${name}}`)).split('/').filter(Boolean).pop()!;
      const kind = name === 'metal' ? 'metals' : before === 'members' ? 'metals' : before;
      return encodeURIComponent(refs[kind] ?? 'x');
    });
  }

  it('covers every owner route', () => {
    expect(ops.length).toBeGreaterThan(30);
    expect(ops.filter((o) => o.body).length).toBeGreaterThan(10);
  });

  it('refuses NUL bytes, broken percent-encoding and over-long segments in the path', async () => {
    const before = await snapshot(m.db);
    let tried = 0;
    for (const op of ops) {
      for (const param of op.params) {
        for (const bad of ['a%00b', '%00', '%ff%fe', `mtl_${'a'.repeat(26)}%00`, 'x'.repeat(5000)]) {
          const r = await m.app.inject({ method: op.method, url: url(op, param, bad), headers: m.auth(m.alice.token) });
          expectOneShape(r.statusCode, r.json(), `${op.method} ${op.path} ${param}=${bad.slice(0, 20)}`);
          tried++;
        }
      }
    }
    expect(tried).toBeGreaterThan(100);
    expect(await snapshot(m.db)).toBe(before);
  });

  it('refuses NUL bytes, broken encoding and huge values in the query string, and unknown query parameters', async () => {
    const before = await snapshot(m.db);
    for (const op of ops) {
      for (const q of [...op.query, 'zzz']) {
        for (const bad of ['%00', 'a%00b', '%ff%fe%00', 'x'.repeat(10_000)]) {
          const r = await m.app.inject({ method: op.method, url: `${url(op)}?${q}=${bad}`, headers: m.auth(m.alice.token) });
          if (q !== 'zzz' && bad.startsWith('x') && r.statusCode < 400) continue; // a long filter value that matches nothing is not an error
          expectOneShape(r.statusCode, r.json(), `${op.method} ${op.path} ?${q}=${bad.slice(0, 20)}`);
        }
      }
    }
    expect(await snapshot(m.db)).toBe(before);
  });

  it('refuses NUL bytes, lone surrogates, huge strings, wrong types and unknown fields in JSON bodies', async () => {
    const before = await snapshot(m.db);
    const h = { ...m.auth(m.alice.token), 'content-type': 'application/json' };
    for (const op of ops.filter((o) => o.body)) {
      const props = Object.entries(op.body!.properties ?? {});
      const bodies: [string, string][] = [['unknown field', JSON.stringify({ zzz: 1 })]];
      for (const [p, schema] of props) {
        bodies.push([`${p} NUL`, JSON.stringify({ [p]: 'a\u0000b' })]);
        bodies.push([`${p} NUL key`, JSON.stringify({ [p]: { 'a\u0000b': 1 } })]);
        bodies.push([`${p} surrogate`, `{"${p}":"a\\ud800b"}`]);
        bodies.push([`${p} huge`, JSON.stringify({ [p]: 'x'.repeat(100_000) })]);
        bodies.push([`${p} wrong type`, JSON.stringify({ [p]: wrongType(schema) })]);
        if (!schema.anyOf?.some((s) => s.type === 'null')) bodies.push([`${p} null`, JSON.stringify({ [p]: null })]);
      }
      for (const [what, payload] of bodies) {
        const r = await m.app.inject({ method: op.method, url: url(op), headers: h, payload });
        expectOneShape(r.statusCode, r.json(), `${op.method} ${op.path} ${what}: ${r.body.slice(0, 200)}`);
      }
    }
    expect(await snapshot(m.db)).toBe(before);
  });

  it('answers 415 naming application/json to a JSON route given another Content-Type, 400 to bad JSON, 413 to a body over the limit', async () => {
    const before = await snapshot(m.db);
    for (const op of ops.filter((o) => o.body)) {
      for (const type of ['application/octet-stream', 'text/plain', 'application/x-www-form-urlencoded', 'application/suit-envelope+cose']) {
        const r = await m.app.inject({ method: op.method, url: url(op), headers: { ...m.auth(m.alice.token), 'content-type': type }, payload: '{"name":"x"}' });
        expectOneShape(r.statusCode, r.json(), `${op.method} ${op.path} ${type}`);
        expect(r.statusCode).toBe(415);
        expect(r.json().error).toMatchObject({ code: 'unsupported_media_type', field: 'content-type' });
        expect(r.json().error.message).toContain('application/json');
      }
      for (const payload of ['{"name":', '[]', '"x"', '1', 'null', `{"name":"${'x'.repeat(2 * 2 ** 20)}"}`]) {
        const r = await m.app.inject({ method: op.method, url: url(op), headers: { ...m.auth(m.alice.token), 'content-type': 'application/json' }, payload });
        expectOneShape(r.statusCode, r.json(), `${op.method} ${op.path} ${payload.slice(0, 20)}`);
      }
    }
    expect(await snapshot(m.db)).toBe(before);
  });

  it('answers 415 naming its media type to a non-JSON route given JSON, and changes nothing', async () => {
    const before = await snapshot(m.db);
    const r = await m.app.inject({ method: 'PUT', url: `/api/v1/glazes/${refs.glazes}/manifest`, headers: { ...m.auth(m.alice.token), 'content-type': 'application/json' }, payload: '{"a":1}' });
    expect(r.statusCode).toBe(415);
    expect(r.json().error.message).toContain('application/suit-envelope+cose');
    expect(await snapshot(m.db)).toBe(before);
  });

  it('answers framework errors in the one shape: bad URL 400, unknown route 404, long segment 414', async () => {
    const cases: [string, number, string][] = [
      ['/api/v1/metals/%ff%fe', 400, 'bad_url'],
      ['/nowhere%ff', 400, 'bad_url'],
      ['/api/v1/nowhere', 404, 'route_not_found'],
      [`/api/v1/metals/${'a'.repeat(101)}`, 414, 'uri_too_long'],
      ['/api/v1/metals/a%00b', 400, 'invalid_string'],
    ];
    for (const [path, status, code] of cases) {
      const r = await m.app.inject({ url: path, headers: { ...m.auth(m.alice.token), 'x-request-id': 'trace-7' } });
      expectOneShape(r.statusCode, r.json(), path);
      expect([r.statusCode, r.json().error.code, r.json().requestId]).toEqual([status, code, 'trace-7']);
    }
  });

  it('names the field: a NUL in the path, the query and the body', async () => {
    const h = m.auth(m.alice.token);
    const path = await m.app.inject({ url: '/api/v1/metals/a%00b', headers: h });
    expect(path.json().error).toMatchObject({ code: 'invalid_string', field: 'params.ref' });
    const query = await m.app.inject({ url: '/api/v1/discovery/records?gatewayId=%00', headers: h });
    expect(query.statusCode).toBe(400);
    expect(query.json().error).toMatchObject({ code: 'invalid_string', field: 'querystring.gatewayId' });
    const body = await m.app.inject({ method: 'POST', url: `/api/v1/spaces/${refs.spaces}/members`, headers: { ...h, 'content-type': 'application/json' }, payload: { metal: 'a\u0000b', interfaces: ['eth0'] } });
    expect(body.json().error).toMatchObject({ code: 'invalid_string', field: 'metal' });
    const nested = await m.app.inject({
      method: 'POST',
      url: '/api/v1/metals',
      headers: { ...h, 'content-type': 'application/json' },
      payload: { name: 'n', interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:09', type: 'ether\u0000net' }] },
    });
    expect(nested.json().error).toMatchObject({ code: 'invalid_string', field: 'interfaces[0].type' });
  });
});
