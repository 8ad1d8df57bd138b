import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestGateway } from '../domains/gateways/test-client.ts';
import { testMaster, type TestMaster } from '../testing.ts';

let web: string;
let m: TestMaster;
let bare: TestMaster;
beforeAll(async () => {
  web = mkdtempSync(join(tmpdir(), 'tips-web-'));
  mkdirSync(join(web, 'assets'));
  writeFileSync(join(web, 'index.html'), '<!doctype html><title>TIPS</title><script type="module" src="/assets/app-Ab12.js"></script>');
  writeFileSync(join(web, 'assets', 'app-Ab12.js'), 'console.log(1)');
  m = await testMaster({ webDir: web });
  bare = await testMaster();
});
afterAll(async () => {
  await m?.close();
  await bare?.close();
  rmSync(web, { recursive: true, force: true });
});

describe('D6 the console is served at / beside the API', () => {
  it('serves index.html revalidated every time, with a CSP that allows only its own scripts and no framing', async () => {
    const r = await m.app.inject({ url: '/' });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toContain('text/html');
    expect(r.headers['cache-control']).toBe('no-cache');
    expect(r.headers['content-security-policy']).toContain("default-src 'self'");
    expect(r.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.body).toContain('/assets/app-Ab12.js');
    const again = await m.app.inject({ url: '/', headers: { 'if-none-match': String(r.headers.etag) } });
    expect(again.statusCode).toBe(304);
  });

  it('caches hashed assets for a year, and a missing asset is a 404, not the index', async () => {
    const r = await m.app.inject({ url: '/assets/app-Ab12.js' });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toContain('text/javascript');
    expect(r.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    const missing = await m.app.inject({ url: '/assets/app-Old9.js' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('route_not_found');
  });

  it('answers deep links with the index (the single-page app routes them)', async () => {
    for (const path of ['/metals/mtl_x', '/gateways/gw-1', '/discovery?mac=02:00:00:00:00:01']) {
      const r = await m.app.inject({ url: path });
      expect([path, r.statusCode, r.body.includes('<title>TIPS</title>')]).toEqual([path, 200, true]);
    }
  });

  it('leaves the API, the docs and the service pages alone', async () => {
    const api = await m.app.inject({ url: '/api/v1/nowhere', headers: m.auth(m.alice.token) });
    expect([api.statusCode, api.json().error.code]).toEqual([404, 'route_not_found']);
    expect((await m.app.inject({ url: '/api/v1/metals' })).statusCode).toBe(401);
    expect((await m.app.inject({ url: '/healthz' })).json()).toEqual({ status: 'ok' });
    expect((await m.app.inject({ url: '/openapi.json' })).json().openapi).toBe('3.1.0');
    expect((await m.app.inject({ url: '/metrics' })).body).toContain('tips_master_live_streams');
    const docs = await m.app.inject({ url: '/docs/' });
    expect(docs.statusCode).toBe(200);
    expect(docs.body).not.toContain('<title>TIPS</title>');
    expect((await m.app.inject({ url: '/docs/nothing-here.js' })).statusCode).toBe(404);
  });

  it('without a built console, / says how to build it and other paths stay 404', async () => {
    const r = await bare.app.inject({ url: '/' });
    expect(r.statusCode).toBe(503);
    expect(r.body).toContain('npm run build');
    expect((await bare.app.inject({ url: '/metals/x' })).statusCode).toBe(404);
  });
});

/**
 * Reads Server-Sent Events from a listening master until the stream ends (`?seconds=`), running
 * `act` once the stream is ready. (The server ends it: a client abort makes undici open a spare
 * connection that would hold the master's close until its header timeout.)
 */
async function events(url: string, headers: Record<string, string>, act: () => Promise<void>) {
  const r = await fetch(url, { headers });
  expect(r.headers.get('content-type')).toContain('text/event-stream');
  const reader = r.body!.getReader();
  const seen: { event: string; data: string }[] = [];
  let buf = '';
  let acted = false;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += Buffer.from(value).toString('utf8');
    for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (event) seen.push({ event, data: data ?? '' });
    }
    if (!acted && seen.some((e) => e.event === 'ready')) {
      acted = true;
      await act();
    }
  }
  return seen;
}

describe('D6 T11 live events: the owner hears what changed, another owner hears nothing', () => {
  it('announces an owner write and a gateway table report to that owner only', async () => {
    await m.app.listen({ port: 0, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${(m.app.server.address() as AddressInfo).port}`;
    const gw = await TestGateway.enroll(m.app, m.alice.token, 'live-gw');
    const bobSaw = events(`${base}/api/v1/events?seconds=4`, m.auth(m.bob.token), async () => undefined);
    const seen = await events(
      `${base}/api/v1/events?seconds=3`,
      m.auth(m.alice.token),
      async () => {
        await m.app.inject({ method: 'POST', url: '/api/v1/metals', headers: m.auth(m.alice.token), payload: { name: 'live-1', interfaces: [{ name: 'eth0', mac: '02:00:00:00:7e:01', type: 'ethernet' }] } });
        const refused = await m.app.inject({ method: 'POST', url: '/api/v1/metals', headers: m.auth(m.alice.token), payload: { name: 'live-1', interfaces: [] } });
        expect(refused.statusCode).toBeGreaterThanOrEqual(400);
        expect((await gw.request('PUT', '/api/gateway/v1/table', { rows: [{ mac: '02:00:00:00:7e:01', state: 'pending' }] })).statusCode).toBe(204);
      },
    );
    const changes = seen.filter((e) => e.event === 'change').map((e) => JSON.parse(e.data));
    expect(changes).toEqual([expect.objectContaining({ kind: 'write', resource: 'metals' }), expect.objectContaining({ kind: 'table', gatewayId: gw.id })]);
    expect((await bobSaw).filter((e) => e.event === 'change')).toEqual([]);
  });

  it('ends the stream after ?seconds= and refuses more than an hour', async () => {
    const r = await m.app.inject({ url: '/api/v1/events?seconds=0', headers: m.auth(m.alice.token) });
    expect(r.statusCode).toBe(200);
    expect(r.body).toMatch(/^retry: \d+\nevent: ready\n/);
    const bad = await m.app.inject({ url: '/api/v1/events?seconds=3601', headers: m.auth(m.alice.token) });
    expect([bad.statusCode, bad.json().error.field]).toEqual([400, 'querystring.seconds']);
  });
});
