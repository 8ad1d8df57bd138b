import type { Mac, OwnerId, TipsId } from '@tips/core';
import type { Db } from '../../db/database.ts';
import { applyKeyset, containsText, type KeysetWindow } from '../../db/keyset.ts';
import type { MetalsTable } from '../../db/schema.ts';
import type { Engine } from '../provisioning/model.ts';
import type { Metal, MetalInterface } from './model.ts';
import type { MacHolder, MetalQuery, MetalStore } from './store.ts';

export class KyselyMetalStore implements MetalStore {
  constructor(private readonly db: Db) {}

  async insert(m: Metal): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx.insertInto('metals').values(this.row(m)).execute();
      await this.insertInterfaces(tx, m);
    });
  }

  async update(m: Metal): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      const { id, owner_id, ...rest } = this.row(m);
      await tx.updateTable('metals').set(rest).where('id', '=', id).where('owner_id', '=', owner_id).execute();
      await tx.deleteFrom('metal_interfaces').where('metal_id', '=', m.id).execute();
      await this.insertInterfaces(tx, m);
    });
  }

  async delete(ownerId: OwnerId, id: TipsId): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      const owned = await tx.selectFrom('metals').select('id').where('id', '=', id).where('owner_id', '=', ownerId).executeTakeFirst();
      if (!owned) return false;
      await tx.deleteFrom('metal_interfaces').where('metal_id', '=', id).execute();
      await tx.deleteFrom('metals').where('id', '=', id).execute();
      return true;
    });
  }

  async findById(ownerId: OwnerId, id: TipsId): Promise<Metal | undefined> {
    const r = await this.db.selectFrom('metals').selectAll().where('id', '=', id).where('owner_id', '=', ownerId).executeTakeFirst();
    return r ? this.hydrate([r])[0] : undefined;
  }

  async findByName(ownerId: OwnerId, name: string): Promise<Metal | undefined> {
    const r = await this.db.selectFrom('metals').selectAll().where('name', '=', name).where('owner_id', '=', ownerId).executeTakeFirst();
    return r ? this.hydrate([r])[0] : undefined;
  }

  async list(ownerId: OwnerId, query: MetalQuery = {}, window?: KeysetWindow): Promise<Metal[]> {
    let q = this.db.selectFrom('metals').selectAll().where('owner_id', '=', ownerId);
    if (query.name !== undefined) q = q.where('name', '=', query.name);
    if (query.ids !== undefined) {
      if (query.ids.length === 0) return [];
      q = q.where('id', 'in', [...query.ids]);
    }
    const label = query.label;
    // Labels are stored as JSON.stringify of a flat string map, so `"key":"value"` occurs in the text
    // exactly when the metal has that label (keys cannot contain quotes; values are escaped the same way).
    if (label) q = q.where(containsText(this.db, 'labels', `${JSON.stringify(label.key)}:${JSON.stringify(label.value)}`));
    return this.hydrate(await applyKeyset(q, 'created_at', 'id', window).execute());
  }

  async findMacHolders(ownerId: OwnerId, macs: Mac[]): Promise<MacHolder[]> {
    if (macs.length === 0) return [];
    const rows = await this.db
      .selectFrom('metal_interfaces')
      .innerJoin('metals', 'metals.id', 'metal_interfaces.metal_id')
      .select(['metal_interfaces.mac', 'metal_interfaces.name as iface', 'metals.id', 'metals.owner_id', 'metals.name'])
      .where('metal_interfaces.owner_id', '=', ownerId)
      .where('metal_interfaces.mac', 'in', macs)
      .execute();
    return rows.map((r) => ({
      mac: r.mac as Mac,
      metalId: r.id as TipsId,
      ownerId: r.owner_id as OwnerId,
      metalName: r.name,
      interfaceName: r.iface,
    }));
  }

  private row(m: Metal): MetalsTable {
    return {
      id: m.id,
      owner_id: m.ownerId,
      name: m.name,
      labels: JSON.stringify(m.labels),
      // Field by field, so the copy holds exactly the model's fields in the list's order.
      interfaces: JSON.stringify(m.interfaces.map((i) => ({ name: i.name, mac: i.mac, type: i.type, pxe: i.pxe }))),
      engine: m.engine,
      created_at: m.createdAt,
      updated_at: m.updatedAt,
    };
  }

  private async insertInterfaces(tx: Db, m: Metal): Promise<void> {
    if (m.interfaces.length === 0) return;
    await tx
      .insertInto('metal_interfaces')
      .values(m.interfaces.map((i, position) => ({ metal_id: m.id, owner_id: m.ownerId, name: i.name, mac: i.mac, type: i.type, pxe: i.pxe ? 1 : 0, position })))
      .execute();
  }

  /** Rows to metals: the interfaces are the row's own JSON copy (0010), so a page is one query. */
  private hydrate(rows: MetalsTable[]): Metal[] {
    const out: Metal[] = new Array(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      out[i] = {
        id: r.id as TipsId,
        ownerId: r.owner_id as OwnerId,
        name: r.name,
        labels: JSON.parse(r.labels) as Record<string, string>,
        interfaces: JSON.parse(r.interfaces) as MetalInterface[],
        engine: (r.engine ?? null) as Engine | null,
        createdAt: r.created_at,
        updatedAt: r.updated_at,
      };
    }
    return out;
  }
}
