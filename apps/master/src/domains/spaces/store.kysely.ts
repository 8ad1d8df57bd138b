import type { GlazeId, OwnerId, Phase, SpaceId, TipsId } from '@tips/core';
import type { Db, Tx } from '../../db/database.ts';
import { applyKeyset, type KeysetWindow } from '../../db/keyset.ts';
import type { SpacesTable } from '../../db/schema.ts';
import { DEFAULT_ENGINE, type Engine, type EngineRule } from '../provisioning/model.ts';
import type { Space, SpaceMember } from './model.ts';
import type { MembershipOfMetal, SpaceStore } from './store.ts';

const toSpace = (r: SpacesTable): Space => ({
  id: r.id as SpaceId,
  ownerId: r.owner_id as OwnerId,
  name: r.name,
  phase: r.phase as Phase,
  glazeId: r.glaze_id as GlazeId | null,
  engine: (r.engine ?? DEFAULT_ENGINE) as Engine,
  engineRules: r.engine_rules ? (JSON.parse(r.engine_rules) as EngineRule[]) : [],
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

type MemberRow = { space_id: string; metal_id: string; interface_name: string; is_default: number };

function groupMembers(rows: MemberRow[]): Map<string, SpaceMember & { spaceId: string }> {
  const out = new Map<string, SpaceMember & { spaceId: string }>();
  for (const r of rows) {
    const key = `${r.space_id} ${r.metal_id}`;
    const m = out.get(key) ?? { spaceId: r.space_id, metalId: r.metal_id as TipsId, interfaces: [], isDefault: r.is_default === 1 };
    m.interfaces.push(r.interface_name);
    out.set(key, m);
  }
  return out;
}

export class KyselySpaceStore implements SpaceStore {
  constructor(private readonly db: Db) {}

  async insert(s: Space): Promise<void> {
    await this.db.insertInto('spaces').values(this.row(s)).execute();
  }

  async update(s: Space): Promise<void> {
    const { id, owner_id, ...rest } = this.row(s);
    await this.db.updateTable('spaces').set(rest).where('id', '=', id).where('owner_id', '=', owner_id).execute();
  }

  async delete(ownerId: OwnerId, id: SpaceId): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      const owned = await tx.selectFrom('spaces').select('id').where('id', '=', id).where('owner_id', '=', ownerId).executeTakeFirst();
      if (!owned) return false;
      await tx.deleteFrom('space_members').where('space_id', '=', id).execute();
      await tx.deleteFrom('spaces').where('id', '=', id).execute();
      return true;
    });
  }

  async findById(ownerId: OwnerId, id: SpaceId): Promise<Space | undefined> {
    const r = await this.db.selectFrom('spaces').selectAll().where('id', '=', id).where('owner_id', '=', ownerId).executeTakeFirst();
    return r && toSpace(r);
  }

  async findByName(ownerId: OwnerId, name: string): Promise<Space | undefined> {
    const r = await this.db.selectFrom('spaces').selectAll().where('name', '=', name).where('owner_id', '=', ownerId).executeTakeFirst();
    return r && toSpace(r);
  }

  async list(ownerId: OwnerId, phase?: number, window?: KeysetWindow): Promise<Space[]> {
    let q = this.db.selectFrom('spaces').selectAll().where('owner_id', '=', ownerId);
    if (phase !== undefined) q = q.where('phase', '=', phase);
    return (await applyKeyset(q, 'created_at', 'id', window).execute()).map(toSpace);
  }

  async members(spaceId: SpaceId, window?: KeysetWindow): Promise<SpaceMember[]> {
    let q = this.db.selectFrom('space_members').selectAll().where('space_id', '=', spaceId);
    if (window) {
      // A member is a metal (one row per linking interface): the window counts metals, so the
      // page's metals come first — a range scan of the primary key (space_id, metal_id, …).
      const after = window.after?.id;
      let ids = this.db.selectFrom('space_members').select('metal_id').distinct().where('space_id', '=', spaceId);
      if (after !== undefined) ids = ids.where('metal_id', '>', after);
      q = q.where('metal_id', 'in', ids.orderBy('metal_id').limit(window.limit));
    }
    const rows = await q.orderBy('metal_id').orderBy('interface_name').execute();
    return [...groupMembers(rows).values()].map(({ spaceId: _s, ...m }) => m);
  }

  async memberIds(spaceId: SpaceId): Promise<TipsId[]> {
    const rows = await this.db.selectFrom('space_members').select('metal_id').distinct().where('space_id', '=', spaceId).orderBy('metal_id').execute();
    return rows.map((r) => r.metal_id as TipsId);
  }

  async putMember(spaceId: SpaceId, m: SpaceMember, guard?: (tx: Tx) => Promise<void>): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await guard?.(tx);
      if (m.isDefault) await tx.updateTable('space_members').set({ is_default: 0 }).where('metal_id', '=', m.metalId).execute();
      await tx.deleteFrom('space_members').where('space_id', '=', spaceId).where('metal_id', '=', m.metalId).execute();
      await tx
        .insertInto('space_members')
        .values(m.interfaces.map((i) => ({ space_id: spaceId, metal_id: m.metalId, interface_name: i, is_default: m.isDefault ? 1 : 0 })))
        .execute();
    });
  }

  async insertNewMember(spaceId: SpaceId, m: SpaceMember, tx: Tx): Promise<void> {
    await tx
      .insertInto('space_members')
      .values(m.interfaces.map((i) => ({ space_id: spaceId, metal_id: m.metalId, interface_name: i, is_default: m.isDefault ? 1 : 0 })))
      .execute();
  }

  async removeMember(spaceId: SpaceId, metalId: TipsId): Promise<boolean> {
    const r = await this.db.deleteFrom('space_members').where('space_id', '=', spaceId).where('metal_id', '=', metalId).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async removeMetal(metalId: TipsId): Promise<void> {
    await this.db.deleteFrom('space_members').where('metal_id', '=', metalId).execute();
  }

  async removeInterfaces(metalId: TipsId, names: string[]): Promise<void> {
    if (names.length === 0) return;
    await this.db.deleteFrom('space_members').where('metal_id', '=', metalId).where('interface_name', 'in', names).execute();
  }

  async membershipsOfMetal(metalId: TipsId, tx?: Tx): Promise<MembershipOfMetal[]> {
    const rows = await (tx ?? this.db)
      .selectFrom('space_members')
      .innerJoin('spaces', 'spaces.id', 'space_members.space_id')
      .select(['space_members.space_id', 'space_members.metal_id', 'space_members.interface_name', 'space_members.is_default', 'spaces.phase', 'spaces.name'])
      .where('space_members.metal_id', '=', metalId)
      .orderBy('spaces.name')
      .orderBy('space_members.interface_name')
      .execute();
    const meta = new Map(rows.map((r) => [r.space_id, { phase: r.phase as Phase, spaceName: r.name }]));
    return [...groupMembers(rows).values()].map((m) => ({ ...m, spaceId: m.spaceId as SpaceId, ...meta.get(m.spaceId)! }));
  }

  async defaultsOfMetals(metalIds: TipsId[]): Promise<{ metalId: TipsId; spaceId: SpaceId; spaceName: string }[]> {
    if (metalIds.length === 0) return [];
    const rows = await this.db
      .selectFrom('space_members')
      .innerJoin('spaces', 'spaces.id', 'space_members.space_id')
      .select(['space_members.metal_id', 'space_members.space_id', 'spaces.name'])
      .distinct()
      .where('space_members.metal_id', 'in', metalIds)
      .where('space_members.is_default', '=', 1)
      .where('spaces.phase', '=', 1)
      .execute();
    return rows.map((r) => ({ metalId: r.metal_id as TipsId, spaceId: r.space_id as SpaceId, spaceName: r.name }));
  }

  async spacesUsingGlaze(glazeId: GlazeId): Promise<Space[]> {
    return (await this.db.selectFrom('spaces').selectAll().where('glaze_id', '=', glazeId).execute()).map(toSpace);
  }

  private row(s: Space): SpacesTable {
    return { id: s.id, owner_id: s.ownerId, name: s.name, phase: s.phase, glaze_id: s.glazeId, engine: s.engine === DEFAULT_ENGINE ? null : s.engine, engine_rules: s.engineRules.length > 0 ? JSON.stringify(s.engineRules) : null, created_at: s.createdAt, updated_at: s.updatedAt };
  }
}
