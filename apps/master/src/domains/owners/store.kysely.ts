import type { OwnerId } from '@tips/core';
import { CompiledQuery } from 'kysely';
import { type Db, readNow } from '../../db/database.ts';
import { applyKeyset, type KeysetWindow } from '../../db/keyset.ts';
import type { ApiToken, Owner } from './model.ts';
import type { OwnerStore } from './store.ts';

type OwnerRow = { id: string; name: string; is_admin: number; created_at: string };
const toOwner = (r: OwnerRow): Owner => ({
  id: r.id as OwnerId,
  name: r.name,
  isAdmin: r.is_admin === 1,
  createdAt: r.created_at,
});

/** The owners store on Kysely: the same queries on SQLite and PostgreSQL. */
export class KyselyOwnerStore implements OwnerStore {
  /** SQL of the token lookup every authenticated request runs, compiled by Kysely once (its text never changes). */
  private tokenSql: string | undefined;

  constructor(private readonly db: Db) {}

  async countOwners(): Promise<number> {
    const r = await this.db.selectFrom('owners').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return Number(r.n);
  }

  async insertOwner(o: Owner): Promise<void> {
    await this.db
      .insertInto('owners')
      .values({ id: o.id, name: o.name, is_admin: o.isAdmin ? 1 : 0, created_at: o.createdAt })
      .execute();
  }

  async findOwner(id: OwnerId): Promise<Owner | undefined> {
    const r = await this.db.selectFrom('owners').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toOwner(r);
  }

  async listOwners(window?: KeysetWindow): Promise<Owner[]> {
    const rows = await applyKeyset(this.db.selectFrom('owners').selectAll(), 'created_at', 'id', window).execute();
    return rows.map(toOwner);
  }

  async insertToken(t: ApiToken, tokenHash: string): Promise<void> {
    await this.db
      .insertInto('api_tokens')
      .values({ id: t.id, owner_id: t.ownerId, name: t.name, token_hash: tokenHash, created_at: t.createdAt, last_used_at: null })
      .execute();
  }

  async findOwnerByTokenHash(tokenHash: string): Promise<{ owner: Owner; tokenId: string; lastUsedAt: string | null } | undefined> {
    const query = () =>
      this.db
        .selectFrom('api_tokens')
        .innerJoin('owners', 'owners.id', 'api_tokens.owner_id')
        .select(['owners.id', 'owners.name', 'owners.is_admin', 'owners.created_at', 'api_tokens.id as token_id', 'api_tokens.last_used_at'])
        .where('api_tokens.token_hash', '=', tokenHash);
    type Row = Awaited<ReturnType<ReturnType<typeof query>['executeTakeFirst']>>;
    let r: Row;
    if (this.tokenSql === undefined) {
      // Building and compiling the query tree cost more than running it (bench/RESULTS.md, metal-list):
      // compiled once, kept only when its one parameter is the hash.
      const compiled = query().compile();
      if (compiled.parameters.length === 1 && compiled.parameters[0] === tokenHash) this.tokenSql = compiled.sql;
      r = (await this.db.executeQuery(compiled)).rows[0];
    } else {
      // SQLite with no transaction open: the statement at once, without Kysely's executor (db/database.ts).
      const now = readNow<NonNullable<Row>>(this.db, this.tokenSql, [tokenHash]);
      r = now ? now.row : (await this.db.executeQuery(CompiledQuery.raw(this.tokenSql, [tokenHash]) as CompiledQuery<NonNullable<Row>>)).rows[0];
    }
    return r && { owner: toOwner(r), tokenId: r.token_id, lastUsedAt: r.last_used_at };
  }

  async touchToken(tokenId: string, at: string, staleBefore: string): Promise<void> {
    await this.db
      .updateTable('api_tokens')
      .set({ last_used_at: at })
      .where('id', '=', tokenId)
      .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', staleBefore)]))
      .execute();
  }

  async listTokens(ownerId: OwnerId, window?: KeysetWindow): Promise<ApiToken[]> {
    const rows = await applyKeyset(this.db.selectFrom('api_tokens').selectAll().where('owner_id', '=', ownerId), 'created_at', 'id', window).execute();
    return rows.map((r) => ({ id: r.id, ownerId: r.owner_id as OwnerId, name: r.name, createdAt: r.created_at, lastUsedAt: r.last_used_at }));
  }

  async deleteToken(ownerId: OwnerId, tokenId: string): Promise<boolean> {
    const r = await this.db.deleteFrom('api_tokens').where('owner_id', '=', ownerId).where('id', '=', tokenId).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }
}
