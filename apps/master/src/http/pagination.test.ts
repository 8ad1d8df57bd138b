import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestMaster, testMaster } from '../testing.ts';
import { DEFAULT_PAGE_LIMIT, decodeCursor, encodeCursor, MAX_PAGE_LIMIT, pageWindow } from './pagination.ts';

let m: TestMaster;
beforeAll(async () => {
  m = await testMaster();
  for (let n = 0; n < 7; n++) {
    await m.services.metals.create(m.alice.id, { name: `pi-${n}`, labels: { rack: String(n % 2) }, interfaces: [{ name: 'eth0', mac: `02:aa:00:00:00:0${n}`, type: 'ethernet', pxe: true }] });
  }
  await m.services.metals.create(m.bob.id, { name: 'bobs', interfaces: [{ name: 'eth0', mac: '02:bb:00:00:00:01', type: 'ethernet' }] });
});
afterAll(async () => m.close());

const get = (url: string, token = m.alice.token) => m.app.inject({ url, headers: m.auth(token) });

async function follow(url: string, token = m.alice.token): Promise<{ names: string[]; pages: number }> {
  const names: string[] = [];
  let next: string | null = null;
  let pages = 0;
  do {
    const sep = url.includes('?') ? '&' : '?';
    const r = await get(next === null ? url : `${url}${sep}cursor=${next}`, token);
    expect(r.statusCode, r.body).toBe(200);
    const body = r.json() as { items: { name: string }[]; nextCursor: string | null };
    names.push(...body.items.map((i) => i.name));
    next = body.nextCursor;
    pages++;
  } while (next !== null);
  return { names, pages };
}

describe('D6 list pagination: limit, opaque cursor, { items, nextCursor }', () => {
  // Metals made in the same millisecond share createdAt and are ordered by ID: compare with the one-page order.
  const inOrder = async () => ((await get('/api/v1/metals?limit=1000')).json().items as { name: string; createdAt: string }[]).map((i) => i.name);

  it('walks every metal once, page by page, oldest first; the last page says nextCursor null', async () => {
    const order = await inOrder();
    expect([...order].sort()).toEqual(['pi-0', 'pi-1', 'pi-2', 'pi-3', 'pi-4', 'pi-5', 'pi-6']);
    expect(await follow('/api/v1/metals?limit=3')).toEqual({ names: order, pages: 3 });
    expect(await follow('/api/v1/metals?limit=7')).toEqual({ names: order, pages: 1 });
    const all = (await get('/api/v1/metals')).json();
    expect(all.items).toHaveLength(7);
    expect(all.nextCursor).toBeNull();
  });

  it('keeps filters on every page, and a cursor grants nothing: another owner only pages through their own', async () => {
    const odd = (await inOrder()).filter((n) => ['pi-1', 'pi-3', 'pi-5'].includes(n));
    expect(await follow('/api/v1/metals?limit=1&label=rack%3D1')).toEqual({ names: odd, pages: 3 });
    const first = (await get('/api/v1/metals?limit=2')).json();
    const asBob = (await get(`/api/v1/metals?cursor=${first.nextCursor}`, m.bob.token)).json();
    expect(asBob.items.map((i: { name: string }) => i.name)).toEqual(['bobs']);
  });

  it('refuses a bad limit with 400 naming the field, and changes nothing', async () => {
    for (const limit of ['0', '1001', '-1', '1.5', 'abc', '', '99999999']) {
      const r = await get(`/api/v1/metals?limit=${encodeURIComponent(limit)}`);
      expect(r.statusCode, limit).toBe(400);
      expect(r.json().error.field, limit).toMatch(/limit$/);
    }
    expect((await get('/api/v1/metals?limit=1000')).statusCode).toBe(200);
  });

  it('refuses a garbage, damaged, truncated or foreign cursor with 400 invalid_cursor', async () => {
    const good = (await get('/api/v1/metals?limit=2')).json().nextCursor as string;
    const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
    const bad = [
      'garbage',
      '!!!',
      flip(good, 5),
      flip(good, good.length - 1),
      good.slice(0, -3),
      `${good}AA`,
      encodeCursor('spaces', decodeCursor('metals', good)),
      Buffer.from('["metals","2026","mtl_x"]').toString('base64url'),
      'A'.repeat(600),
    ];
    for (const cursor of bad) {
      const r = await get(`/api/v1/metals?limit=2&cursor=${encodeURIComponent(cursor)}`);
      expect(r.statusCode, cursor).toBe(400);
      expect(r.json().error, cursor).toMatchObject({ code: 'invalid_cursor', field: 'cursor' });
    }
  });

  it('pages every owner list the same way', async () => {
    await m.services.spaces.create(m.alice.id, { name: 's1', phase: 1 });
    await m.services.spaces.create(m.alice.id, { name: 's2', phase: 2 });
    await m.services.gateways.create(m.alice.id, { name: 'g1' });
    await m.services.gateways.create(m.alice.id, { name: 'g2' });
    await m.services.owners.issueToken(m.alice.id, 't2');
    await m.services.enrollment.createSecret(m.alice.id, { metal: 'pi-0' });
    await m.services.enrollment.createSecret(m.alice.id, { metal: 'pi-1' });
    const lists = [
      '/api/v1/spaces',
      '/api/v1/glazes',
      '/api/v1/gateways',
      '/api/v1/keys',
      '/api/v1/tokens',
      '/api/v1/enrollment/secrets',
      '/api/v1/enrollment/certificates',
      '/api/v1/discovery/failures',
      '/api/v1/discovery/registrations',
    ];
    for (const url of lists) {
      const all = (await get(url)).json();
      expect(all, url).toMatchObject({ items: expect.any(Array), nextCursor: null });
      const ids: unknown[] = [];
      let next: string | null = null;
      do {
        const r = await get(`${url}?limit=1${next ? `&cursor=${next}` : ''}`);
        expect(r.statusCode, url).toBe(200);
        ids.push(...r.json().items.map((i: { id?: string; serial?: string }) => i.id ?? i.serial));
        next = r.json().nextCursor;
      } while (next);
      expect(ids, url).toEqual(all.items.map((i: { id?: string; serial?: string }) => i.id ?? i.serial));
      expect((await get(`${url}?limit=0`)).statusCode, url).toBe(400);
      expect((await get(`${url}?cursor=nope`)).json().error?.code, url).toBe('invalid_cursor');
    }
    const owners = await follow('/api/v1/owners?limit=1', m.adminToken);
    expect(owners.names).toHaveLength(3);
    expect(owners.pages).toBe(3);
  });
});

describe('D6 pageWindow and decodeCursor refuse what they did not give out (unit)', () => {
  const refused = (f: () => unknown, field: string) => {
    try {
      f();
    } catch (e) {
      expect((e as { field?: string }).field).toBe(field);
      return;
    }
    throw new Error('not refused');
  };

  it('limit: default 100, 1 to 1000, digits only; the window asks one row more', () => {
    expect(pageWindow('metals', {})).toEqual({ limit: DEFAULT_PAGE_LIMIT + 1 });
    expect(pageWindow('metals', { limit: '1' })).toEqual({ limit: 2 });
    expect(pageWindow('metals', { limit: String(MAX_PAGE_LIMIT) })).toEqual({ limit: MAX_PAGE_LIMIT + 1 });
    for (const bad of ['0', '1001', '9999', '-1', '1.5', '1e2', ' 5', '5 ', 'x', '', '00001']) refused(() => pageWindow('metals', { limit: bad }), 'limit');
  });

  it('cursor: round-trips for its own list only; damaged, truncated, foreign or oversize is invalid_cursor', () => {
    const c = encodeCursor('metals', { at: '2030-01-01T00:00:00.000Z', id: 'mtl_a' });
    expect(decodeCursor('metals', c)).toEqual({ at: '2030-01-01T00:00:00.000Z', id: 'mtl_a' });
    expect(pageWindow('metals', { cursor: c })).toEqual({ limit: DEFAULT_PAGE_LIMIT + 1, after: { at: '2030-01-01T00:00:00.000Z', id: 'mtl_a' } });
    const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
    const raw = Buffer.from(c, 'base64url');
    const forged = (payload: unknown) => {
      const p = Buffer.from(JSON.stringify(payload));
      // A payload with a wrong check: refused before it is parsed.
      return Buffer.concat([p, raw.subarray(raw.length - 8)]).toString('base64url');
    };
    for (const bad of [
      flip(c, 0),
      flip(c, c.length - 1),
      c.slice(0, -2),
      c.slice(0, 10),
      'AAAA',
      `${c}!`,
      'x'.repeat(513),
      forged(['metals', 'a', 'b']),
      encodeCursor('spaces', { at: 'a', id: 'b' }),
    ]) {
      refused(() => decodeCursor('metals', bad), 'cursor');
    }
    expect(() => decodeCursor('metals', encodeCursor('spaces', { at: 'a', id: 'b' }))).toThrow(/another list, spaces/);
  });
});
