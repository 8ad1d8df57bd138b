import type { OwnerId } from '@tips/core';
import type { Db } from '../../db/database.ts';
import type { Directive, DirectiveKind } from './model.ts';
import type { DirectiveStore } from './store.ts';
import type { MetalDirectivesTable } from './tables.ts';

const toDirective = (r: MetalDirectivesTable): Directive => ({
  id: r.id,
  ownerId: r.owner_id as OwnerId,
  kind: r.kind as DirectiveKind,
  metalId: r.metal_id === '' ? null : r.metal_id,
  keyId: r.key_id,
  sequenceNumber: r.sequence_number,
  envelope: new Uint8Array(Buffer.from(r.envelope, 'base64')),
  createdAt: r.created_at,
});

export class KyselyDirectiveStore implements DirectiveStore {
  constructor(private readonly db: Db) {}

  async insert(d: Directive): Promise<void> {
    await this.db
      .insertInto('metal_directives')
      .values({
        id: d.id,
        owner_id: d.ownerId,
        kind: d.kind,
        metal_id: d.metalId ?? '',
        key_id: d.keyId,
        sequence_number: d.sequenceNumber,
        envelope: Buffer.from(d.envelope).toString('base64'),
        created_at: d.createdAt,
      })
      .execute();
  }

  async newest(ownerId: OwnerId, kind: DirectiveKind, metalId: string | null): Promise<Directive | undefined> {
    const r = await this.db
      .selectFrom('metal_directives')
      .selectAll()
      .where('owner_id', '=', ownerId)
      .where('kind', '=', kind)
      .where('metal_id', '=', metalId ?? '')
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst();
    return r && toDirective(r);
  }

  async list(ownerId: OwnerId, limit: number): Promise<Directive[]> {
    const rows = await this.db.selectFrom('metal_directives').selectAll().where('owner_id', '=', ownerId).orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit).execute();
    return rows.map(toDirective);
  }
}
