import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LightMyRequestResponse } from 'fastify';
import { testMaster, type TestMaster } from '../../testing.ts';

let m: TestMaster;
beforeAll(async () => {
  m = await testMaster({ sessionTtlSeconds: 2, logs: true });
});
afterAll(async () => m?.close());

const ORIGIN = 'http://localhost:80';

/** Signs in as alice; returns the cookie header to send and the CSRF token. */
async function signIn(token = m.alice.token) {
  const r = await m.app.inject({ method: 'POST', url: '/api/v1/session', payload: { token } });
  expect(r.statusCode).toBe(201);
  const cookies = ([] as string[]).concat(r.headers['set-cookie'] as string[]);
  const pair = (name: string) => cookies.find((c) => c.startsWith(`${name}=`))!.split(';')[0]!;
  return { r, cookies, cookie: `${pair('tips_session')}; ${pair('tips_csrf')}`, csrf: r.json().csrfToken as string };
}

const metalCount = async () => (await m.app.inject({ url: '/api/v1/metals', headers: m.auth(m.alice.token) })).json().items.length as number;
let macs = 0;
const createMetal = (headers: Record<string, string>, name: string): Promise<LightMyRequestResponse> =>
  m.app.inject({ method: 'POST', url: '/api/v1/metals', headers, payload: { name, interfaces: [{ name: 'eth0', mac: `02:00:00:00:5e:${(++macs).toString(16).padStart(2, '0')}`, type: 'ethernet' }] } });

describe('D6 console sessions: an API token exchanged for an HttpOnly cookie, CSRF-checked writes', () => {
  it('sets an HttpOnly SameSite=Strict session cookie and a readable CSRF cookie; the token is not in them', async () => {
    const { cookies, csrf, r } = await signIn();
    const session = cookies.find((c) => c.startsWith('tips_session='))!;
    expect(session).toMatch(/; HttpOnly/);
    expect(session).toMatch(/SameSite=Strict/);
    expect(session).toMatch(/Path=\//);
    const csrfCookie = cookies.find((c) => c.startsWith('tips_csrf='))!;
    expect(csrfCookie).not.toMatch(/HttpOnly/);
    expect(csrfCookie.split(';')[0]).toBe(`tips_csrf=${csrf}`);
    expect(cookies.join()).not.toContain(m.alice.token.slice(5));
    expect(r.json().owner.name).toBe('alice');
    expect(r.headers['cache-control']).toBe('no-store');
  });

  it('refuses a wrong token with 401 and sets no cookie', async () => {
    const r = await m.app.inject({ method: 'POST', url: '/api/v1/session', payload: { token: `tips_${'A'.repeat(43)}` } });
    expect(r.statusCode).toBe(401);
    expect(r.headers['set-cookie']).toBeUndefined();
  });

  it('authenticates reads with the cookie alone, as the signed-in owner', async () => {
    const { cookie, csrf } = await signIn();
    const r = await m.app.inject({ url: '/api/v1/session', headers: { cookie } });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ owner: { name: 'alice' }, csrfToken: csrf });
    expect((await m.app.inject({ url: '/api/v1/me', headers: { cookie } })).json().name).toBe('alice');
  });

  it('refuses cookie writes without the CSRF header, with a wrong one, or from another origin; nothing is created', async () => {
    const { cookie, csrf } = await signIn();
    const before = await metalCount();
    const noHeader = await createMetal({ cookie, origin: ORIGIN }, 'csrf-1');
    expect(noHeader.statusCode).toBe(403);
    expect(noHeader.json().error.code).toBe('csrf_failed');
    expect((await createMetal({ cookie, origin: ORIGIN, 'x-tips-csrf': `${csrf.slice(0, -1)}x` }, 'csrf-2')).statusCode).toBe(403);
    const crossSite = await createMetal({ cookie, origin: 'https://evil.example', 'x-tips-csrf': csrf }, 'csrf-3');
    expect(crossSite.statusCode).toBe(403);
    expect(crossSite.json().error.message).toContain('evil.example');
    expect((await createMetal({ cookie, 'sec-fetch-site': 'cross-site', 'x-tips-csrf': csrf }, 'csrf-4')).statusCode).toBe(403);
    expect(await metalCount()).toBe(before);
    const ok = await createMetal({ cookie, origin: ORIGIN, 'x-tips-csrf': csrf }, 'csrf-ok');
    expect(ok.statusCode).toBe(201);
    expect(await metalCount()).toBe(before + 1);
  });

  it('a bearer token still works without any CSRF header (the CLI)', async () => {
    expect((await createMetal(m.auth(m.alice.token), 'bearer-1')).statusCode).toBe(201);
  });

  it('sign-out deletes the session: the old cookie is refused afterwards', async () => {
    const { cookie, csrf } = await signIn();
    const out = await m.app.inject({ method: 'DELETE', url: '/api/v1/session', headers: { cookie, origin: ORIGIN, 'x-tips-csrf': csrf } });
    expect(out.statusCode).toBe(204);
    expect(([] as string[]).concat(out.headers['set-cookie'] as string[]).every((c) => /Max-Age=0/.test(c))).toBe(true);
    const after = await m.app.inject({ url: '/api/v1/me', headers: { cookie } });
    expect(after.statusCode).toBe(401);
    const rows = await m.db.selectFrom('console_sessions').select('id_hash').where('owner_id', '=', m.alice.id).execute();
    expect(rows.every((x) => !cookie.includes(x.id_hash))).toBe(true);
  });

  it('sign-out is a write: without the CSRF header it is refused and the session lives on', async () => {
    const { cookie } = await signIn();
    expect((await m.app.inject({ method: 'DELETE', url: '/api/v1/session', headers: { cookie } })).statusCode).toBe(403);
    expect((await m.app.inject({ url: '/api/v1/me', headers: { cookie } })).statusCode).toBe(200);
  });

  it('revoking the API token ends the sessions opened with it', async () => {
    const made = await m.app.inject({ method: 'POST', url: '/api/v1/tokens', headers: m.auth(m.alice.token), payload: { name: 'console-revoke' } });
    const { cookie } = await signIn(made.json().secret);
    expect((await m.app.inject({ url: '/api/v1/me', headers: { cookie } })).statusCode).toBe(200);
    await m.app.inject({ method: 'DELETE', url: `/api/v1/tokens/${made.json().id}`, headers: m.auth(m.alice.token) });
    expect((await m.app.inject({ url: '/api/v1/me', headers: { cookie } })).statusCode).toBe(401);
  });

  it('a session expires after its lifetime', async () => {
    const { cookie } = await signIn();
    expect((await m.app.inject({ url: '/api/v1/me', headers: { cookie } })).statusCode).toBe(200);
    await new Promise((r) => setTimeout(r, 2100));
    expect((await m.app.inject({ url: '/api/v1/me', headers: { cookie } })).statusCode).toBe(401);
  });

  it('a forged or malformed session cookie is 401', async () => {
    for (const v of ['x', 'A'.repeat(43), '../../etc']) {
      expect((await m.app.inject({ url: '/api/v1/me', headers: { cookie: `tips_session=${v}` } })).statusCode).toBe(401);
    }
  });
});

describe('D6 sign-in is counted and logged, never with the token', () => {
  const count = async (event: string) => {
    const text = (await m.app.inject({ url: '/metrics' })).body;
    return Number(new RegExp(`^tips_master_console_sessions_total\\{event="${event}"\\} (\\d+)$`, 'm').exec(text)?.[1]);
  };
  it('counts sessions created, sign-ins refused, sessions expired and ended; the logs name the owner and not the token or secret', async () => {
    const before = { created: await count('created'), failed: await count('failed'), expired: await count('expired'), ended: await count('ended') };
    const { cookie, csrf } = await signIn();
    const wrong = `tips_${'B'.repeat(43)}`;
    await m.app.inject({ method: 'POST', url: '/api/v1/session', payload: { token: wrong } });
    await m.app.inject({ method: 'DELETE', url: '/api/v1/session', headers: { cookie, origin: ORIGIN, 'x-tips-csrf': csrf } });
    const late = await signIn();
    await new Promise((r) => setTimeout(r, 2100));
    expect((await m.app.inject({ url: '/api/v1/me', headers: { cookie: late.cookie } })).statusCode).toBe(401);
    expect(await count('created')).toBe(before.created + 2);
    expect(await count('failed')).toBe(before.failed + 1);
    expect(await count('ended')).toBe(before.ended + 1);
    expect(await count('expired')).toBeGreaterThanOrEqual(before.expired + 1);
    const lines = m.logs.join('');
    expect(lines).toContain('"code":"signed_in"');
    expect(lines).toContain('"code":"sign_in_refused"');
    expect(lines).toContain('"code":"signed_out"');
    expect(lines).not.toContain(m.alice.token.slice(5));
    expect(lines).not.toContain(wrong.slice(5));
    expect(lines).not.toContain(cookie.split(';')[0]!.split('=')[1]);
  });
});
