import type { GlazeId, OwnerId, Sha256, SpaceId } from '@tips/core';
import type { Db } from '../../db/database.ts';
import { applyKeyset, type KeysetWindow } from '../../db/keyset.ts';
import type { GlazesTable } from '../../db/schema.ts';
import type { Glaze, GlazeHandler } from './model.ts';
import type { GlazeStore } from './store.ts';

export class KyselyGlazeStore implements GlazeStore {
  constructor(private readonly db: Db) {}

  async insert(g: Glaze): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx.insertInto('glazes').values(this.row(g)).execute();
      if (g.spaces.length > 0) await tx.insertInto('glaze_spaces').values(g.spaces.map((s) => ({ glaze_id: g.id, space_id: s }))).execute();
    });
  }

  async update(g: Glaze): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx.updateTable('glazes').set({ name: g.name }).where('id', '=', g.id).where('owner_id', '=', g.ownerId).execute();
      await tx.deleteFrom('glaze_spaces').where('glaze_id', '=', g.id).execute();
      if (g.spaces.length > 0) await tx.insertInto('glaze_spaces').values(g.spaces.map((s) => ({ glaze_id: g.id, space_id: s }))).execute();
    });
  }

  async delete(ownerId: OwnerId, id: GlazeId): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      const owned = await tx.selectFrom('glazes').select('id').where('id', '=', id).where('owner_id', '=', ownerId).executeTakeFirst();
      if (!owned) return false;
      await tx.deleteFrom('glaze_spaces').where('glaze_id', '=', id).execute();
      await tx.deleteFrom('glazes').where('id', '=', id).execute();
      return true;
    });
  }

  async findById(ownerId: OwnerId, id: GlazeId): Promise<Glaze | undefined> {
    const r = await this.db.selectFrom('glazes').selectAll().where('id', '=', id).where('owner_id', '=', ownerId).executeTakeFirst();
    return r ? (await this.hydrate([r]))[0] : undefined;
  }

  async findByName(ownerId: OwnerId, name: string): Promise<Glaze | undefined> {
    const r = await this.db.selectFrom('glazes').selectAll().where('name', '=', name).where('owner_id', '=', ownerId).executeTakeFirst();
    return r ? (await this.hydrate([r]))[0] : undefined;
  }

  async list(ownerId: OwnerId, spaceId?: SpaceId, window?: KeysetWindow): Promise<Glaze[]> {
    let q = this.db.selectFrom('glazes').selectAll('glazes').where('owner_id', '=', ownerId);
    if (spaceId) q = q.where('id', 'in', this.db.selectFrom('glaze_spaces').select('glaze_id').where('space_id', '=', spaceId));
    return this.hydrate(await applyKeyset(q, 'created_at', 'id', window).execute());
  }

  async forgetSpace(spaceId: SpaceId): Promise<void> {
    await this.db.deleteFrom('glaze_spaces').where('space_id', '=', spaceId).execute();
  }

  async referencedBlobKeys(keys: string[]): Promise<Set<string>> {
    const found = new Set<string>();
    // Chunks keep each statement under SQLite's and PostgreSQL's bound-parameter limits.
    for (let i = 0; i < keys.length; i += 500) {
      const rows = await this.db
        .selectFrom('glazes')
        .select('blob_key')
        .where('blob_key', 'in', keys.slice(i, i + 500))
        .execute();
      for (const r of rows) found.add(r.blob_key);
    }
    return found;
  }

  private row(g: Glaze): GlazesTable {
    return {
      id: g.id,
      owner_id: g.ownerId,
      name: g.name,
      size: g.size,
      sha256: g.sha256,
      media_type: g.mediaType,
      blob_key: g.id,
      created_at: g.createdAt,
      handler: g.handler,
      version: g.version,
    };
  }

  private async hydrate(rows: GlazesTable[]): Promise<Glaze[]> {
    if (rows.length === 0) return [];
    const links = await this.db
      .selectFrom('glaze_spaces')
      .selectAll()
      .where(
        'glaze_id',
        'in',
        rows.map((r) => r.id),
      )
      .orderBy('space_id')
      .execute();
    return rows.map((r) => ({
      id: r.id as GlazeId,
      ownerId: r.owner_id as OwnerId,
      name: r.name,
      size: Number(r.size),
      sha256: r.sha256 as Sha256,
      mediaType: r.media_type,
      createdAt: r.created_at,
      spaces: links.filter((l) => l.glaze_id === r.id).map((l) => l.space_id as SpaceId),
      handler: (r.handler ?? 'archive') as GlazeHandler,
      version: r.version ?? null,
    }));
  }
}
