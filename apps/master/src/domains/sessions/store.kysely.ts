import type { OwnerId } from '@tips/core';
import type { Db } from '../../db/database.ts';
import type { ConsoleSession } from './model.ts';
import type { SessionStore } from './store.ts';
import type { ConsoleSessionsTable } from './tables.ts';

const toSession = (r: ConsoleSessionsTable): ConsoleSession => ({
  idHash: r.id_hash,
  ownerId: r.owner_id as OwnerId,
  tokenHash: r.token_hash,
  csrfToken: r.csrf_token,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
});

/** Console sessions on Kysely: the same queries on SQLite and PostgreSQL. */
export class KyselySessionStore implements SessionStore {
  constructor(private readonly db: Db) {}

  async insert(s: ConsoleSession): Promise<void> {
    await this.db
      .insertInto('console_sessions')
      .values({ id_hash: s.idHash, owner_id: s.ownerId, token_hash: s.tokenHash, csrf_token: s.csrfToken, created_at: s.createdAt, expires_at: s.expiresAt })
      .execute();
  }

  async find(idHash: string, now: string): Promise<ConsoleSession | undefined> {
    const r = await this.db.selectFrom('console_sessions').selectAll().where('id_hash', '=', idHash).where('expires_at', '>', now).executeTakeFirst();
    return r && toSession(r);
  }

  async delete(idHash: string): Promise<boolean> {
    const r = await this.db.deleteFrom('console_sessions').where('id_hash', '=', idHash).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async sweep(now: string): Promise<number> {
    const r = await this.db.deleteFrom('console_sessions').where('expires_at', '<=', now).executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}
