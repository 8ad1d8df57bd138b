import type { OwnerId, TipsId } from '@tips/core';
import type { Db } from '../../db/database.ts';
import type { PskCredential } from './model.ts';
import type { ConstrainedStore } from './store.ts';
import type { ConstrainedPskTable } from './tables.ts';

const toCredential = (r: ConstrainedPskTable): PskCredential => ({
  identity: r.identity,
  ownerId: r.owner_id as OwnerId,
  metalId: r.metal_id as TipsId,
  createdAt: r.created_at,
  revokedAt: r.revoked_at,
});

export class KyselyConstrainedStore implements ConstrainedStore {
  constructor(private readonly db: Db) {}

  async insertPsk(c: PskCredential, sealedKey: Uint8Array): Promise<void> {
    await this.db
      .insertInto('constrained_psks')
      .values({ identity: c.identity, owner_id: c.ownerId, metal_id: c.metalId, sealed_key: Buffer.from(sealedKey).toString('base64'), created_at: c.createdAt, revoked_at: c.revokedAt })
      .execute();
  }

  async listPsks(metalId: TipsId): Promise<PskCredential[]> {
    const rows = await this.db.selectFrom('constrained_psks').selectAll().where('metal_id', '=', metalId).orderBy('created_at').orderBy('identity').execute();
    return rows.map(toCredential);
  }

  async findPsk(identity: string): Promise<{ credential: PskCredential; sealedKey: Uint8Array } | undefined> {
    const r = await this.db.selectFrom('constrained_psks').selectAll().where('identity', '=', identity).executeTakeFirst();
    return r && { credential: toCredential(r), sealedKey: new Uint8Array(Buffer.from(r.sealed_key, 'base64')) };
  }

  async revokePsk(metalId: TipsId, identity: string, at: string): Promise<boolean> {
    const r = await this.db
      .updateTable('constrained_psks')
      .set({ revoked_at: at })
      .where('metal_id', '=', metalId)
      .where('identity', '=', identity)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async forgetMetal(metalId: TipsId): Promise<void> {
    await this.db.deleteFrom('constrained_psks').where('metal_id', '=', metalId).execute();
  }
}
