import type { OwnerId } from '@tips/core';
import type { Db } from '../../db/database.ts';
import { applyKeyset, type KeysetWindow } from '../../db/keyset.ts';
import type { GlazeManifest, OperatorKey } from './model.ts';
import type { KeyStore } from './store.ts';
import type { OperatorKeysTable } from './tables.ts';

const toKey = (r: OperatorKeysTable): OperatorKey => ({
  id: r.id,
  ownerId: r.owner_id as OwnerId,
  name: r.name,
  alg: r.alg as 'ES256' | 'EdDSA',
  publicKeyPem: r.public_key,
  kid: r.kid,
  serverHeld: r.server_private_key !== null,
  createdAt: r.created_at,
  revokedAt: r.revoked_at,
});

export class KyselyKeyStore implements KeyStore {
  constructor(private readonly db: Db) {}

  async insert(k: OperatorKey, serverPrivateKeyPem: string | null): Promise<void> {
    await this.db
      .insertInto('operator_keys')
      .values({
        id: k.id,
        owner_id: k.ownerId,
        name: k.name,
        alg: k.alg,
        public_key: k.publicKeyPem,
        kid: k.kid,
        server_private_key: serverPrivateKeyPem,
        created_at: k.createdAt,
        revoked_at: k.revokedAt,
      })
      .execute();
  }

  async list(ownerId: OwnerId, includeRevoked = true, window?: KeysetWindow): Promise<OperatorKey[]> {
    let q = this.db.selectFrom('operator_keys').selectAll().where('owner_id', '=', ownerId);
    if (!includeRevoked) q = q.where('revoked_at', 'is', null);
    return (await applyKeyset(q, 'created_at', 'id', window).execute()).map(toKey);
  }

  findById(ownerId: OwnerId, id: string): Promise<{ key: OperatorKey; serverPrivateKeyPem: string | null } | undefined> {
    return this.findBy(ownerId, 'id', id);
  }

  findByName(ownerId: OwnerId, name: string): Promise<{ key: OperatorKey; serverPrivateKeyPem: string | null } | undefined> {
    return this.findBy(ownerId, 'name', name);
  }

  private async findBy(ownerId: OwnerId, column: 'id' | 'name', value: string): Promise<{ key: OperatorKey; serverPrivateKeyPem: string | null } | undefined> {
    const r = await this.db.selectFrom('operator_keys').selectAll().where('owner_id', '=', ownerId).where(column, '=', value).executeTakeFirst();
    return r && { key: toKey(r), serverPrivateKeyPem: r.server_private_key };
  }

  async revoke(ownerId: OwnerId, id: string, at: string): Promise<boolean> {
    const r = await this.db.updateTable('operator_keys').set({ revoked_at: at }).where('owner_id', '=', ownerId).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async putManifest(m: GlazeManifest): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx.deleteFrom('glaze_manifests').where('glaze_id', '=', m.glazeId).execute();
      await tx
        .insertInto('glaze_manifests')
        .values({ glaze_id: m.glazeId, owner_id: m.ownerId, key_id: m.keyId, envelope: Buffer.from(m.envelope).toString('base64'), sequence_number: m.sequenceNumber, created_at: m.createdAt })
        .execute();
    });
  }

  async getManifest(ownerId: OwnerId, glazeId: string): Promise<GlazeManifest | undefined> {
    const r = await this.db.selectFrom('glaze_manifests').selectAll().where('owner_id', '=', ownerId).where('glaze_id', '=', glazeId).executeTakeFirst();
    return (
      r && {
        glazeId: r.glaze_id,
        ownerId: r.owner_id as OwnerId,
        keyId: r.key_id,
        envelope: new Uint8Array(Buffer.from(r.envelope, 'base64')),
        sequenceNumber: r.sequence_number,
        createdAt: r.created_at,
      }
    );
  }

  async signersOf(ownerId: OwnerId, glazeIds: string[]): Promise<{ glazeId: string; keyId: string; sequenceNumber: string; createdAt: string }[]> {
    if (glazeIds.length === 0) return [];
    const rows = await this.db.selectFrom('glaze_manifests').select(['glaze_id', 'key_id', 'sequence_number', 'created_at']).where('owner_id', '=', ownerId).where('glaze_id', 'in', glazeIds).execute();
    return rows.map((r) => ({ glazeId: r.glaze_id, keyId: r.key_id, sequenceNumber: r.sequence_number, createdAt: r.created_at }));
  }
}
