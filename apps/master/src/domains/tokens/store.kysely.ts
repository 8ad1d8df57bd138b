import type { Db } from '../../db/database.ts';
import type { TokenStore } from './store.ts';

export class KyselyTokenStore implements TokenStore {
  constructor(private readonly db: Db) {}

  async insertChallenge(c: { nonce: string; ownerId: string; expiresAt: string; createdAt: string }): Promise<void> {
    await this.db.insertInto('token_challenges').values({ nonce: c.nonce, owner_id: c.ownerId, expires_at: c.expiresAt, created_at: c.createdAt }).execute();
  }

  async consumeChallenge(nonce: string, now: string): Promise<boolean> {
    const r = await this.db.deleteFrom('token_challenges').where('nonce', '=', nonce).where('expires_at', '>', now).executeTakeFirst();
    // Expired ones go too, so the table does not grow.
    await this.db.deleteFrom('token_challenges').where('expires_at', '<=', now).execute();
    return Number(r.numDeletedRows) === 1;
  }
}
