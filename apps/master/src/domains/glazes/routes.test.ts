import { createHash, randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type TestMaster, testMaster } from '../../testing.ts';
import { parseRange } from './routes.ts';

let m: TestMaster;
let h: Record<string, string>;
const payload = randomBytes(300_000);
const sha = createHash('sha256').update(payload).digest('hex');

beforeEach(async () => {
  m = await testMaster({ maxGlazeBytes: 1_000_000 });
  h = m.auth(m.alice.token);
  await m.app.inject({ method: 'POST', url: '/api/v1/spaces', headers: h, payload: { name: 'base-os', phase: 1 } });
});
afterEach(async () => m.close());

const upload = (query: string, body: Buffer = payload, headers: Record<string, string> = h) =>
  m.app.inject({ method: 'POST', url: `/api/v1/glazes?${query}`, headers: { ...headers, 'content-type': 'application/octet-stream' }, payload: body });

const blobsAndTemps = () => ({ blobs: readdirSync(join(m.dir, 'glazes', 'blobs')), temps: readdirSync(join(m.dir, 'glazes', 'tmp')) });

describe('T12 Glaze repository', () => {
  it('stores an upload with its size, SHA-256 and allowed Spaces', async () => {
    const r = await upload('name=raspios-2026.11&spaces=base-os');
    expect(r.statusCode).toBe(201);
    const g = r.json();
    expect(g).toMatchObject({ name: 'raspios-2026.11', size: payload.length, sha256: sha, mediaType: 'application/octet-stream' });
    expect(g.spaces).toEqual([expect.stringMatching(/^spc_/)]);
    expect((await m.app.inject({ url: '/api/v1/glazes?space=base-os', headers: h })).json().items).toHaveLength(1);
  });

  it('serves the payload whole, by Range, and honours ETag', async () => {
    const g = (await upload('name=img')).json();
    const whole = await m.app.inject({ url: `/api/v1/glazes/${g.id}/content`, headers: h });
    expect(whole.statusCode).toBe(200);
    expect(whole.rawPayload.equals(payload)).toBe(true);
    expect(whole.headers.etag).toBe(`"sha256:${sha}"`);
    expect(whole.headers['accept-ranges']).toBe('bytes');

    const part = await m.app.inject({ url: '/api/v1/glazes/img/content', headers: { ...h, range: 'bytes=100-199' } });
    expect(part.statusCode).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 100-199/${payload.length}`);
    expect(part.rawPayload.equals(payload.subarray(100, 200))).toBe(true);

    const tail = await m.app.inject({ url: '/api/v1/glazes/img/content', headers: { ...h, range: 'bytes=-10' } });
    expect(tail.rawPayload.equals(payload.subarray(payload.length - 10))).toBe(true);

    const bad = await m.app.inject({ url: '/api/v1/glazes/img/content', headers: { ...h, range: `bytes=${payload.length}-` } });
    expect(bad.statusCode).toBe(416);
    expect(bad.headers['content-range']).toBe(`bytes */${payload.length}`);

    const cached = await m.app.inject({ url: '/api/v1/glazes/img/content', headers: { ...h, 'if-none-match': `"sha256:${sha}"` } });
    expect(cached.statusCode).toBe(304);

    const staleIfRange = await m.app.inject({ url: '/api/v1/glazes/img/content', headers: { ...h, range: 'bytes=0-9', 'if-range': '"other"' } });
    expect(staleIfRange.statusCode).toBe(200);
  });

  it('parses ranges per RFC 9110', () => {
    expect(parseRange('bytes=0-', 10)).toEqual({ start: 0, end: 9 });
    expect(parseRange('bytes=5-100', 10)).toEqual({ start: 5, end: 9 });
    expect(parseRange('bytes=-3', 10)).toEqual({ start: 7, end: 9 });
    expect(parseRange('bytes=9-2', 10)).toBe('unsatisfiable');
    expect(parseRange('bytes=0-1,3-4', 10)).toBeUndefined();
    expect(parseRange('items=0-1', 10)).toBeUndefined();
  });

  it('refuses to delete a Glaze a Space uses, and deletes it once unused', async () => {
    await upload('name=img&spaces=base-os');
    const set = await m.app.inject({ method: 'PATCH', url: '/api/v1/spaces/base-os', headers: h, payload: { glaze: 'img' } });
    expect(set.statusCode).toBe(200);
    const refused = await m.app.inject({ method: 'DELETE', url: '/api/v1/glazes/img', headers: h });
    expect(refused.statusCode).toBe(409);
    expect(refused.json().error).toMatchObject({ code: 'glaze_in_use', field: 'glaze' });
    expect((await m.app.inject({ url: '/api/v1/glazes/img/content', headers: h })).statusCode).toBe(200);
    await m.app.inject({ method: 'PATCH', url: '/api/v1/spaces/base-os', headers: h, payload: { glaze: null } });
    expect((await m.app.inject({ method: 'DELETE', url: '/api/v1/glazes/img', headers: h })).statusCode).toBe(204);
    expect(blobsAndTemps()).toEqual({ blobs: [], temps: [] });
  });

  it('refuses to give a Space a Glaze that does not allow it', async () => {
    await upload('name=img');
    const r = await m.app.inject({ method: 'PATCH', url: '/api/v1/spaces/base-os', headers: h, payload: { glaze: 'img' } });
    expect(r.statusCode).toBe(422);
    expect(r.json().error.code).toBe('glaze_not_allowed_in_space');
  });

  it.each([
    ['name=img&sha256=' + '0'.repeat(64), 422, 'digest_mismatch'],
    ['name=img&spaces=nope', 404, 'space_not_found'],
    ['name=bad%20name', 400, 'invalid_value'],
    ['name=img&color=red', 400, 'validation_failed'],
  ])('refuses %s with %i %s and keeps nothing', async (query, status, code) => {
    const r = await upload(query);
    expect(r.statusCode).toBe(status);
    expect(r.json().error.code).toBe(code);
    expect((await m.app.inject({ url: '/api/v1/glazes', headers: h })).json().items).toEqual([]);
    expect(blobsAndTemps()).toEqual({ blobs: [], temps: [] });
  });

  it('refuses an upload over the size limit and keeps nothing', async () => {
    const r = await upload('name=big', randomBytes(1_000_001));
    expect(r.statusCode).toBe(413);
    expect(r.json().error.code).toBe('upload_too_large');
    expect(blobsAndTemps()).toEqual({ blobs: [], temps: [] });
  });

  it("hides another owner's Glaze (404) and its content", async () => {
    const g = (await upload('name=img')).json();
    for (const url of [`/api/v1/glazes/${g.id}`, `/api/v1/glazes/${g.id}/content`]) {
      const r = await m.app.inject({ url, headers: m.auth(m.bob.token) });
      expect(r.statusCode).toBe(404);
    }
    expect((await m.app.inject({ method: 'DELETE', url: `/api/v1/glazes/${g.id}`, headers: m.auth(m.bob.token) })).statusCode).toBe(404);
  });

  it('leaves nothing behind when the client disconnects mid-upload', async () => {
    await m.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = m.app.server.address() as { port: number };
    await new Promise<void>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.write(
          `POST /api/v1/glazes?name=cut HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${m.alice.token}\r\n` +
            `Content-Type: application/octet-stream\r\nContent-Length: 900000\r\n\r\n`,
        );
        s.write(payload.subarray(0, 200_000), () => setTimeout(() => s.destroy(), 100));
      });
      s.on('close', () => resolve());
    });
    for (let i = 0; i < 50 && blobsAndTemps().temps.length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(blobsAndTemps()).toEqual({ blobs: [], temps: [] });
    expect((await m.app.inject({ url: '/api/v1/glazes', headers: h })).json().items).toEqual([]);
  });

  it('refuses a body that is not application/octet-stream with 415', async () => {
    const r = await m.app.inject({ method: 'POST', url: '/api/v1/glazes?name=img', headers: { ...h, 'content-type': 'text/plain' }, payload: 'x' });
    expect(r.statusCode).toBe(415);
  });
});
