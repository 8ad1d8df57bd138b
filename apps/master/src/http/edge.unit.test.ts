import { createServer } from 'node:http';
import { connect } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { edgeServerOptions, errorBody, fieldPath, installEdgeGuards, MAX_PARAM_LENGTH } from './edge.ts';
import { installErrorHandler } from './error-handler.ts';

/**
 * The HTTP edge on its own (edge.ts over a bare Fastify app with the master's error handler): each
 * guard, each refusal's status, code, field and message. edge.test.ts drives the same guards through
 * every route of the real master on both stores; this one is fast enough to run per mutant
 * (`npm run mutation edge`, docs/TESTING.md › Mutation: edge).
 */

let app: FastifyInstance;
let port: number;

beforeAll(async () => {
  app = Fastify({
    logger: false,
    ...edgeServerOptions,
    // A short request timeout, checked often, so the 408 path is reachable in a test.
    serverFactory: (handler) => createServer({ requestTimeout: 400, headersTimeout: 400, connectionsCheckingInterval: 50 }, handler),
  });
  installErrorHandler(app);
  installEdgeGuards(app);
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  const echo = async (req: { body?: unknown; query?: unknown; params?: unknown }) => ({ ok: true, body: req.body ?? null, query: req.query, params: req.params });
  app.post('/api/json', { schema: { body: { type: 'object' } } }, echo);
  app.post('/api/any', { schema: { body: {} } }, echo);
  app.put('/api/blob', { config: { bodyType: 'application/octet-stream' } }, async (req) => ({ bytes: (req.body as Buffer).length }));
  app.post('/api/nobody', echo);
  app.get('/api/plain', echo);
  app.get('/api/q', { schema: { querystring: { type: 'object', properties: { a: { type: 'string' }, name: { type: 'string' } } } } }, echo);
  app.get('/api/items/:ref', echo);
  app.get('/other/plain', echo);
  await app.listen({ port: 0, host: '127.0.0.1' });
  port = (app.server.address() as { port: number }).port;
});
afterAll(async () => app.close());

type Answer = { status: number; json: { error: { code: string; message: string; field?: string }; requestId: string } & Record<string, unknown>; headers: Record<string, unknown> };
async function call(opts: { method?: 'GET' | 'POST' | 'PUT'; url: string; headers?: Record<string, string>; payload?: string | Buffer }): Promise<Answer> {
  const r = await app.inject({ method: opts.method ?? 'GET', url: opts.url, headers: opts.headers, payload: opts.payload });
  return { status: r.statusCode, json: r.json(), headers: r.headers };
}
const refusal = (a: Answer) => ({ status: a.status, ...a.json.error });

/** One raw HTTP exchange over TCP (what Node's parser refuses never reaches Fastify's inject). */
function raw(bytes: string | Buffer, opts: { end?: boolean } = {}): Promise<{ status: number; head: string; body: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1' });
    let buf = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => {
      buf += d;
    });
    s.on('error', reject);
    s.on('close', () => {
      const at = buf.indexOf('\r\n\r\n');
      resolve({ status: Number(buf.slice(9, 12)), head: buf.slice(0, at), body: buf.slice(at + 4), closed: true });
    });
    s.write(bytes);
    if (opts.end) s.end();
  });
}

describe('D4 fieldPath and errorBody: one field-path style and one error shape', () => {
  it('renders array indexes in brackets, plain keys with dots, odd keys quoted', () => {
    expect(fieldPath([])).toBe('');
    expect(fieldPath(['name'])).toBe('name');
    expect(fieldPath(['interfaces', 0, 'mac'])).toBe('interfaces[0].mac');
    expect(fieldPath([0, 'a'])).toBe('[0].a');
    expect(fieldPath(['querystring', 'x-y_z9'])).toBe('querystring.x-y_z9');
    expect(fieldPath(['_private'])).toBe('_private');
    expect(fieldPath(['9lives'])).toBe('["9lives"]');
    expect(fieldPath(['labels', 'a b'])).toBe('labels["a b"]');
    expect(fieldPath(['labels', 'ok!'])).toBe('labels["ok!"]');
    expect(fieldPath(['a', '-x'])).toBe('a["-x"]');
    expect(fieldPath(['a', ''])).toBe('a[""]');
  });

  it('has field only when one is named', () => {
    expect(errorBody('r1', 'c', 'm')).toEqual({ error: { code: 'c', message: 'm' }, requestId: 'r1' });
    expect(Object.keys(errorBody('r1', 'c', 'm').error)).toEqual(['code', 'message']);
    expect(errorBody('r1', 'c', 'm', 'f')).toEqual({ error: { code: 'c', message: 'm', field: 'f' }, requestId: 'r1' });
  });
});

describe('D4 415: a route given a body of another media type is refused before anything parses it', () => {
  it('a JSON route refuses another Content-Type, or none, naming application/json', async () => {
    expect(refusal(await call({ method: 'POST', url: '/api/json', headers: { 'content-type': 'text/plain' }, payload: 'x' }))).toEqual({
      status: 415,
      code: 'unsupported_media_type',
      message: 'expected Content-Type application/json, got "text/plain"',
      field: 'content-type',
    });
    expect(refusal(await call({ method: 'POST', url: '/api/json', headers: { 'content-type': 'application/octet-stream' }, payload: Buffer.from('{}') }))).toMatchObject({
      status: 415,
      message: 'expected Content-Type application/json, got "application/octet-stream"',
    });
    const long = `text/${'x'.repeat(200)}`;
    expect((await call({ method: 'POST', url: '/api/json', headers: { 'content-type': long }, payload: 'x' })).json.error.message).toBe(
      `expected Content-Type application/json, got ${JSON.stringify(long.slice(0, 100))}`,
    );
    // No Content-Type at all, with a body (raw: inject would add one).
    const none = await raw('POST /api/json HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}');
    expect(none.status).toBe(415);
    expect(JSON.parse(none.body).error.message).toBe('expected Content-Type application/json, got none');
    const chunked = await raw('POST /api/json HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n');
    expect(chunked.status).toBe(415);
  });

  it('takes the media type case-insensitively and without its parameters', async () => {
    const ok = await call({ method: 'POST', url: '/api/json', headers: { 'content-type': ' Application/JSON ; charset=utf-8' }, payload: '{"a":"b"}' });
    expect(ok.status).toBe(200);
    expect(ok.json.body).toEqual({ a: 'b' });
  });

  it('does not ask a media type of a request without a body', async () => {
    const empty = await raw('POST /api/json HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    expect(empty.status).not.toBe(415);
    const noLength = await raw('POST /api/json HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n');
    expect(noLength.status).not.toBe(415);
    // A route with no body schema and no bodyType takes what Fastify takes.
    expect((await call({ method: 'POST', url: '/api/nobody', headers: { 'content-type': 'application/json' }, payload: '{"a":1}' })).status).toBe(200);
  });

  it('a route with its own body type refuses JSON naming that type, and takes its type', async () => {
    expect(refusal(await call({ method: 'PUT', url: '/api/blob', headers: { 'content-type': 'application/json' }, payload: '{}' }))).toEqual({
      status: 415,
      code: 'unsupported_media_type',
      message: 'expected Content-Type application/octet-stream, got "application/json"',
      field: 'content-type',
    });
    // Bytes are not strings: a NUL in an octet body is data, not a refusal.
    const ok = await call({ method: 'PUT', url: '/api/blob', headers: { 'content-type': 'application/octet-stream' }, payload: Buffer.from([0, 1, 0, 2]) });
    expect(ok.status).toBe(200);
    expect(ok.json).toEqual({ bytes: 4 });
  });
});

describe('D4 the query string: valid percent-encoded UTF-8, no unknown parameters', () => {
  it('refuses a value or a name that is not valid percent-encoded UTF-8, naming the parameter', async () => {
    expect(refusal(await call({ url: '/api/q?a=%ff' }))).toEqual({ status: 400, code: 'bad_url', message: 'querystring.a is not valid percent-encoded UTF-8', field: 'querystring.a' });
    // The name is given decoded when it decodes.
    expect(refusal(await call({ url: '/api/q?n%61me=%e2%82' }))).toMatchObject({ status: 400, code: 'bad_url', field: 'querystring.name' });
    expect(refusal(await call({ url: '/api/q?a=1&%ff=1' }))).toEqual({ status: 400, code: 'bad_url', message: 'querystring["%ff"] is not valid percent-encoded UTF-8', field: 'querystring["%ff"]' });
    // At most 64 characters of a name are repeated back.
    const long = `${'%ff'.repeat(40)}`;
    expect((await call({ url: `/api/q?${long}=1` })).json.error.field).toBe(fieldPath(['querystring', long.slice(0, 64)]));
    const longOk = 'b'.repeat(100);
    expect((await call({ url: `/api/q?${longOk}=%ff` })).json.error.field).toBe(`querystring.${'b'.repeat(64)}`);
  });

  it('takes valid encodings: plus as space, empty pairs, a name without a value', async () => {
    const ok = await call({ url: '/api/q?a=x+y%20z&&name' });
    expect(ok.status).toBe(200);
    expect(ok.json.query).toEqual({ a: 'x y z', name: '' });
    expect((await call({ url: '/api/q?a=%e2%82%ac' })).json.query).toEqual({ a: '€' });
    expect((await call({ url: '/api/q' })).status).toBe(200);
    // A `+` is a space before decoding: `%+` is as broken as `% `.
    expect((await call({ url: '/api/q?a=%+' })).status).toBe(400);
  });

  it('an API route without a query schema refuses any parameter, naming it; routes outside /api/ do not', async () => {
    expect(refusal(await call({ url: '/api/plain?x=1' }))).toEqual({
      status: 400,
      code: 'validation_failed',
      message: 'unknown field "querystring.x" (this route takes no query parameters)',
      field: 'querystring.x',
    });
    expect((await call({ url: '/api/plain' })).status).toBe(200);
    expect((await call({ url: '/other/plain?x=1' })).status).toBe(200);
    expect((await call({ url: '/api/q?a=1' })).status).toBe(200);
  });
});

describe('D4 strings no database should get: a NUL or a lone surrogate anywhere is a 400 naming the field', () => {
  it('in the path, the query and the body, with the reason', async () => {
    expect(refusal(await call({ url: '/api/items/a%00b' }))).toEqual({ status: 400, code: 'invalid_string', message: 'params.ref contains a NUL character', field: 'params.ref' });
    expect(refusal(await call({ url: '/api/q?a=x%00' }))).toEqual({ status: 400, code: 'invalid_string', message: 'querystring.a contains a NUL character', field: 'querystring.a' });
    const post = (payload: string) => call({ method: 'POST', url: '/api/any', headers: { 'content-type': 'application/json' }, payload });
    expect(refusal(await post('{"name":"a\\u0000"}'))).toEqual({ status: 400, code: 'invalid_string', message: 'name contains a NUL character', field: 'name' });
    expect(refusal(await post('{"list":[1,"ok","\\ud800"]}'))).toEqual({
      status: 400,
      code: 'invalid_string',
      message: 'list[2] is not valid Unicode (a lone surrogate)',
      field: 'list[2]',
    });
    expect(refusal(await post('{"a":{"b":["x","\\udc00y"]}}'))).toMatchObject({ field: 'a.b[1]', message: 'a.b[1] is not valid Unicode (a lone surrogate)' });
    expect(refusal(await post('{"a":"\\ud800\\ud800\\udc00"}'))).toMatchObject({ field: 'a' });
    expect(refusal(await post('{"ok":1,"a\\u0000b":1}'))).toEqual({
      status: 400,
      code: 'invalid_string',
      message: '["a\\u0000b"] has a name that contains a NUL character',
      field: '["a\\u0000b"]',
    });
    expect(refusal(await post('{"k\\udfff":1}'))).toMatchObject({ message: expect.stringMatching(/has a name that is not valid Unicode \(a lone surrogate\)$/) });
    // A top-level string body is named as the body.
    expect(refusal(await post('"\\u0000"'))).toEqual({ status: 400, code: 'invalid_string', message: 'body contains a NUL character', field: 'body' });
    expect(refusal(await post('["\\u0000"]'))).toMatchObject({ field: '[0]' });
  });

  it('takes every valid string: pairs of surrogates, other control characters, numbers and null', async () => {
    const post = (payload: string) => call({ method: 'POST', url: '/api/any', headers: { 'content-type': 'application/json' }, payload });
    const ok = await post('{"emoji":"😀 \\ud83d\\ude00","tab":"a\\tb\\u0001","n":[1,null,true,{"x":"y"}]}');
    expect(ok.status).toBe(200);
    expect((ok.json.body as { emoji: string }).emoji).toBe('😀 😀');
    expect((await post('"plain"')).status).toBe(200);
    expect((await post('null')).status).toBe(200);
  });

  it('looks 64 levels deep (then stops: a bound on the work an input can cause)', async () => {
    const nested = (levels: number) => `${'['.repeat(levels)}"\\u0000"${']'.repeat(levels)}`;
    const post = (payload: string) => call({ method: 'POST', url: '/api/any', headers: { 'content-type': 'application/json' }, payload });
    const found = await post(nested(65));
    expect(found.status).toBe(400);
    expect(found.json.error.field).toBe('[0]'.repeat(65));
    expect((await post(nested(66))).status).toBe(200);
    const objects = (levels: number) => `${'{"a":'.repeat(levels)}"\\u0000"${'}'.repeat(levels)}`;
    expect((await post(objects(65))).status).toBe(400);
    expect((await post(objects(66))).status).toBe(200);
  });
});

describe('D4 errors raised before a route runs have the one shape', () => {
  it('a path that is not percent-encoded UTF-8 is 400 bad_url; a segment over the limit is 414', async () => {
    const bad = await call({ url: '/api/items/%ff%fe', headers: { 'x-request-id': 'given' } });
    expect(bad.status).toBe(400);
    expect(bad.json).toEqual({ error: { code: 'bad_url', message: 'the URL path is not valid percent-encoded UTF-8' }, requestId: bad.json.requestId });
    expect(bad.headers['x-request-id']).toBe(bad.json.requestId);
    const long = await call({ url: `/api/items/${'a'.repeat(MAX_PARAM_LENGTH + 1)}` });
    expect(long.status).toBe(414);
    expect(long.json.error).toEqual({ code: 'uri_too_long', message: `a path segment is longer than ${MAX_PARAM_LENGTH} characters` });
    expect(long.headers['x-request-id']).toBe(long.json.requestId);
    expect((await call({ url: `/api/items/${'a'.repeat(MAX_PARAM_LENGTH)}` })).status).toBe(200);
  });

  const expectShape = (r: { head: string; body: string }, status: number, code: string, message: string) => {
    const body = JSON.parse(r.body);
    expect(body).toEqual({ error: { code, message }, requestId: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    expect(r.head).toContain(`\r\nX-Request-Id: ${body.requestId}`);
    expect(r.head).toContain('\r\nContent-Type: application/json; charset=utf-8');
    expect(r.head).toContain(`\r\nContent-Length: ${Buffer.byteLength(r.body)}`);
    expect(r.head).toContain('\r\nConnection: close');
    expect(r.head.split('\r\n')[0]).toBe(`HTTP/1.1 ${status} ${{ 400: 'Bad Request', 408: 'Request Timeout', 414: 'URI Too Long', 431: 'Request Header Fields Too Large' }[status]}`);
  };

  it("Node's parser: bytes that are not HTTP are 400, a request line over the limit 414, headers over it 431", async () => {
    const garbage = await raw('NOT HTTP AT ALL\r\n\r\n');
    expect(garbage.status).toBe(400);
    expectShape(garbage, 400, 'bad_request', 'the request is not valid HTTP/1.1');
    const uri = await raw(`GET /api/plain?${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
    expectShape(uri, 414, 'uri_too_long', 'the request URI is too long');
    // A request line that never ends (no CRLF within the limit) is the URI's too.
    expectShape(await raw(`GET /${'a'.repeat(20_000)}`), 414, 'uri_too_long', 'the request URI is too long');
    const headers = await raw(`GET /api/plain HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`);
    expectShape(headers, 431, 'headers_too_large', 'the request headers are too large');
    // The request line ends at 8192 bytes: still a header problem; one byte more is the URI's.
    const line = (n: number) => {
      const start = 'GET /api/plain?';
      const end = ' HTTP/1.1';
      return `${start}${'q'.repeat(n - start.length - end.length)}${end}`;
    };
    expect(line(8192)).toHaveLength(8192);
    expectShape(await raw(`${line(8192)}\r\nX-Big: ${'b'.repeat(12_000)}\r\n\r\n`), 431, 'headers_too_large', 'the request headers are too large');
    expectShape(await raw(`${line(8193)}\r\nX-Big: ${'b'.repeat(12_000)}\r\n\r\n`), 414, 'uri_too_long', 'the request URI is too long');
  });

  it('a request not received in time is 408 in the one shape', async () => {
    const slow = await raw('GET /api/plain HTTP/1.1\r\nHost: x\r\n');
    expectShape(slow, 408, 'request_timeout', 'the request was not received in time');
  });
});
