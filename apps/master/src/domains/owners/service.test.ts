// API token authentication and its last-use record: a request reads, it does not write (T2, B5: on
// SQLite every write is the one writer; a write per GET made reading the metal list a write load).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Db, openDatabase } from '../../db/database.ts';
import { systemRandom } from '../../ports.ts';
import { OwnerService, TOKEN_TOUCH_PERIOD_MS } from './service.ts';
import { KyselyOwnerStore } from './store.kysely.ts';

const T0 = Date.parse('2030-01-01T00:00:00.000Z');

describe('T2 B5 API tokens: lastUsedAt is written at most once a minute per token', () => {
  let dir: string;
  let db: Db;
  let now: number;
  let touches: number;
  let owners: OwnerService;
  let store: KyselyOwnerStore;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tips-owners-'));
    db = await openDatabase({ kind: 'sqlite', file: join(dir, 'tips.db') });
    now = T0;
    touches = 0;
    store = new KyselyOwnerStore(db);
    const touchToken = store.touchToken.bind(store);
    store.touchToken = async (...a) => {
      touches++;
      return touchToken(...a);
    };
    owners = new OwnerService(store, { now: () => new Date(now) }, systemRandom);
  });
  afterEach(async () => {
    await db.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  const lastUsed = async () => (await db.selectFrom('api_tokens').select('last_used_at').executeTakeFirstOrThrow()).last_used_at;

  it('writes the first use, skips uses within the period, writes again after it', async () => {
    const { token } = (await owners.ensureAdmin())!;
    expect(await lastUsed()).toBeNull();
    await owners.authenticate(token);
    expect(await lastUsed()).toBe(new Date(T0).toISOString());
    expect(touches).toBe(1);
    for (const dt of [1, 1_000, TOKEN_TOUCH_PERIOD_MS - 1, TOKEN_TOUCH_PERIOD_MS]) {
      now = T0 + dt;
      expect((await owners.authenticate(token)).name).toBe('admin');
    }
    expect(touches).toBe(1);
    expect(await lastUsed()).toBe(new Date(T0).toISOString());
    now = T0 + TOKEN_TOUCH_PERIOD_MS + 1;
    await owners.authenticate(token);
    expect(touches).toBe(2);
    expect(await lastUsed()).toBe(new Date(now).toISOString());
  });

  it('a touch that lost a race (another request or replica wrote a newer time) does not move the time back', async () => {
    const { token } = (await owners.ensureAdmin())!;
    await owners.authenticate(token);
    const { id } = await db.selectFrom('api_tokens').select('id').executeTakeFirstOrThrow();
    const newer = new Date(T0 + 5_000).toISOString();
    await db.updateTable('api_tokens').set({ last_used_at: newer }).execute();
    // A request that read the token before that write decides to touch it with its older clock.
    await store.touchToken(id, new Date(T0 + 2_000).toISOString(), new Date(T0 + 2_000 - TOKEN_TOUCH_PERIOD_MS).toISOString());
    expect(await lastUsed()).toBe(newer);
  });

  it('an unknown or malformed token is refused and writes nothing', async () => {
    await owners.ensureAdmin();
    await expect(owners.authenticate(`tips_${'A'.repeat(43)}`)).rejects.toMatchObject({ code: 'unauthenticated' });
    await expect(owners.authenticate('nope')).rejects.toMatchObject({ code: 'unauthenticated' });
    await expect(owners.authenticate(undefined)).rejects.toMatchObject({ code: 'unauthenticated' });
    expect(touches).toBe(0);
    expect(await lastUsed()).toBeNull();
  });
});
