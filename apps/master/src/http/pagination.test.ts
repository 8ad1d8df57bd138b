import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestMaster, testMaster } from '../testing.ts';
import { DEFAULT_PAGE_LIMIT, decodeCursor, encodeCursor, MAX_PAGE_LIMIT, pageWindow, readPageJson } from './pagination.ts';

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

  /** The refusal's message, or 'accepted'. */
  const why = (cursor: string) => {
    try {
      decodeCursor('metals', cursor);
      return 'accepted';
    } catch (e) {
      expect((e as { code?: string }).code).toBe('invalid_cursor');
      return (e as Error).message;
    }
  };
  /** A cursor whose check is right (the check is an integrity code, not a secret): only its payload is wrong. */
  const sealed = (payload: string | Buffer) => {
    const p = Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'utf8');
    const check = createHash('sha256').update('tips-cursor-v1\0').update(p).digest().subarray(0, 8);
    return Buffer.concat([p, check]).toString('base64url');
  };

  it('cursor: the payload is [list, at, id] of strings under a domain-separated check; every other payload is refused as damaged', () => {
    // The check is computed as documented: an honest payload sealed here is accepted.
    expect(decodeCursor('metals', sealed('["metals","2030-01-01T00:00:00.000Z","mtl_a"]'))).toEqual({ at: '2030-01-01T00:00:00.000Z', id: 'mtl_a' });
    expect(sealed(JSON.stringify(['metals', 'é', 'b']))).toBe(encodeCursor('metals', { at: 'é', id: 'b' }));
    const damaged = 'cursor is not one this list gave out (damaged); start again without cursor';
    for (const payload of ['not json', ' ', '{"0":"metals","1":"a","2":"b"}', '"metals"', '["metals","a"]', '["metals","a","b","c"]', '["metals",1,"b"]', '["metals","a",null]', '[1,2,3]']) {
      expect(why(sealed(payload)), payload).toBe(damaged);
    }
    expect(why(sealed(Buffer.from([0xff, 0xfe, 0x5b])))).toBe(damaged);
  });

  it('cursor: each refusal says why (alphabet and length, too short, damaged, another list) and the limit refusal says the range', () => {
    const c = encodeCursor('metals', { at: 'a', id: 'b' });
    const msg = (w: string) => `cursor is not one this list gave out (${w}); start again without cursor`;
    expect(why('A'.repeat(513))).toBe(msg('not base64url'));
    // 512 characters are in the limit: this one is refused by its check, not by its length.
    expect(why('A'.repeat(512))).toBe(msg('damaged'));
    expect(why(`!${c}`)).toBe(msg('not base64url'));
    expect(why(`${c}=`)).toBe(msg('not base64url'));
    expect(why('')).toBe(msg('not base64url'));
    // Eight bytes hold a check and no payload, even the check of an empty payload.
    expect(why(sealed(''))).toBe(msg('too short'));
    expect(why(Buffer.alloc(8).toString('base64url'))).toBe(msg('too short'));
    expect(why(Buffer.alloc(9).toString('base64url'))).toBe(msg('damaged'));
    expect(why(encodeCursor('spaces', { at: 'a', id: 'b' }))).toBe(msg('it belongs to another list, spaces'));
    expect(() => pageWindow('metals', { limit: '0' })).toThrow(`limit must be an integer from 1 to ${MAX_PAGE_LIMIT}`);
  });
});

describe('D6 readPageJson writes the page the Page schema would (unit)', () => {
  const rows = Array.from({ length: 5 }, (_, n) => ({ at: `t${n}`, id: `i${n}`, json: `{"n":${n}}` }));
  const read = (q: { limit?: string; cursor?: string }, have = rows) =>
    readPageJson(
      'things',
      q,
      async (w) => {
        const from = w.after ? have.findIndex((r) => r.id === w.after!.id) + 1 : 0;
        return have.slice(from, from + w.limit);
      },
      (r) => ({ at: r.at, id: r.id }),
      (r) => r.json,
    );

  it('items in order, the next cursor at the last item, null on the last page; an empty list is an empty page', async () => {
    const first = await read({ limit: '2' });
    expect(first).toBe(`{"items":[{"n":0},{"n":1}],"nextCursor":"${encodeCursor('things', { at: 't1', id: 'i1' })}"}`);
    const second = JSON.parse(await read({ limit: '2', cursor: JSON.parse(first).nextCursor }));
    expect(second.items).toEqual([{ n: 2 }, { n: 3 }]);
    expect(await read({ limit: '2', cursor: second.nextCursor })).toBe('{"items":[{"n":4}],"nextCursor":null}');
    // Exactly a page left: no next page, though the window asked one row more.
    expect(await read({ limit: '5' })).toBe('{"items":[{"n":0},{"n":1},{"n":2},{"n":3},{"n":4}],"nextCursor":null}');
    expect(await read({}, [])).toBe('{"items":[],"nextCursor":null}');
    expect(await read({ limit: '1' }, rows.slice(0, 1))).toBe('{"items":[{"n":0}],"nextCursor":null}');
    await expect(read({ limit: '0' })).rejects.toThrow(/limit must be/);
  });
});
