import type { OnboardingKeyId, OwnerId } from '@tips/core';
import type { Db } from '../../db/database.ts';
import { applyKeyset, type KeysetWindow } from '../../db/keyset.ts';
import type { ImportedVoucher, OnboardingKey, OnboardingStatus } from './model.ts';
import type { ImportOutcome, VoucherStore } from './store.ts';
import type { OnboardingKeysTable, VouchersTable } from './tables.ts';

const toKey = (r: OnboardingKeysTable): OnboardingKey => ({
  id: r.id as OnboardingKeyId,
  ownerId: r.owner_id as OwnerId,
  name: r.name,
  alg: 'ES256',
  publicKeyPem: r.public_key,
  fingerprint: r.fingerprint,
  createdAt: r.created_at,
});

const toVoucher = (r: VouchersTable): ImportedVoucher => ({
  ownerId: r.owner_id as OwnerId,
  guid: r.guid,
  sha256: r.sha256,
  voucher: new Uint8Array(Buffer.from(r.voucher, 'base64')),
  deviceInfo: r.device_info,
  rendezvous: JSON.parse(r.rendezvous) as string[],
  manufacturerKey: r.manufacturer_key,
  deviceKeyPem: r.device_key,
  ownerChain: JSON.parse(r.owner_chain) as string[],
  onboardingKeyId: r.onboarding_key_id as OnboardingKeyId,
  status: r.status as OnboardingStatus,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

const toRow = (v: ImportedVoucher): VouchersTable => ({
  owner_id: v.ownerId,
  guid: v.guid,
  sha256: v.sha256,
  voucher: Buffer.from(v.voucher).toString('base64'),
  device_info: v.deviceInfo,
  rendezvous: JSON.stringify(v.rendezvous),
  manufacturer_key: v.manufacturerKey,
  device_key: v.deviceKeyPem,
  owner_chain: JSON.stringify(v.ownerChain),
  onboarding_key_id: v.onboardingKeyId,
  status: v.status,
  created_at: v.createdAt,
  updated_at: v.updatedAt,
});

export class KyselyVoucherStore implements VoucherStore {
  constructor(private readonly db: Db) {}

  async insertKey(k: OnboardingKey, privateKeyPem: string): Promise<void> {
    await this.db
      .insertInto('onboarding_keys')
      .values({ id: k.id, owner_id: k.ownerId, name: k.name, alg: k.alg, public_key: k.publicKeyPem, fingerprint: k.fingerprint, private_key: privateKeyPem, created_at: k.createdAt })
      .execute();
  }

  async listKeys(ownerId: OwnerId, window?: KeysetWindow): Promise<OnboardingKey[]> {
    const q = this.db.selectFrom('onboarding_keys').selectAll().where('owner_id', '=', ownerId);
    return (await applyKeyset(q, 'created_at', 'id', window).execute()).map(toKey);
  }

  async findKeyById(ownerId: OwnerId, id: string): Promise<OnboardingKey | undefined> {
    const r = await this.db.selectFrom('onboarding_keys').selectAll().where('owner_id', '=', ownerId).where('id', '=', id).executeTakeFirst();
    return r && toKey(r);
  }

  async findKeyByName(ownerId: OwnerId, name: string): Promise<OnboardingKey | undefined> {
    const r = await this.db.selectFrom('onboarding_keys').selectAll().where('owner_id', '=', ownerId).where('name', '=', name).executeTakeFirst();
    return r && toKey(r);
  }

  async keyName(ownerId: OwnerId, id: OnboardingKeyId): Promise<string | undefined> {
    const r = await this.db.selectFrom('onboarding_keys').select('name').where('owner_id', '=', ownerId).where('id', '=', id).executeTakeFirst();
    return r?.name;
  }

  async privateKeyPem(ownerId: OwnerId, id: OnboardingKeyId): Promise<string | undefined> {
    const r = await this.db.selectFrom('onboarding_keys').select('private_key').where('owner_id', '=', ownerId).where('id', '=', id).executeTakeFirst();
    return r?.private_key;
  }

  async findByGuid(guid: string): Promise<ImportedVoucher[]> {
    return (await this.db.selectFrom('vouchers').selectAll().where('guid', '=', guid).execute()).map(toVoucher);
  }

  async setStatus(ownerId: OwnerId, guid: string, status: OnboardingStatus, at: string): Promise<void> {
    await this.db.updateTable('vouchers').set({ status, updated_at: at }).where('owner_id', '=', ownerId).where('guid', '=', guid).execute();
  }

  async putNonce(nonceHash: string, ownerId: OwnerId, guid: string, expiresAt: string): Promise<void> {
    await this.db.insertInto('onboarding_nonces').values({ nonce_hash: nonceHash, owner_id: ownerId, guid, expires_at: expiresAt }).execute();
  }

  async takeNonce(nonceHash: string, ownerId: OwnerId, guid: string, now: string): Promise<boolean> {
    await this.db.deleteFrom('onboarding_nonces').where('expires_at', '<=', now).execute();
    const r = await this.db
      .deleteFrom('onboarding_nonces')
      .where('nonce_hash', '=', nonceHash)
      .where('owner_id', '=', ownerId)
      .where('guid', '=', guid)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async importAll(vouchers: ImportedVoucher[]): Promise<{ outcomes: ImportOutcome[] } | { conflict: number }> {
    const conflict = Symbol('conflict');
    try {
      return await this.db.transaction().execute(async (tx) => {
        const outcomes: ImportOutcome[] = [];
        for (const [i, v] of vouchers.entries()) {
          const existing = await tx.selectFrom('vouchers').select('sha256').where('owner_id', '=', v.ownerId).where('guid', '=', v.guid).executeTakeFirst();
          if (existing) {
            if (existing.sha256 !== v.sha256) throw { [conflict]: i };
            outcomes.push('unchanged');
            continue;
          }
          await tx.insertInto('vouchers').values(toRow(v)).execute();
          outcomes.push('imported');
        }
        return { outcomes };
      });
    } catch (err) {
      if (err !== null && typeof err === 'object' && conflict in err) return { conflict: (err as Record<symbol, number>)[conflict]! };
      throw err;
    }
  }

  async list(ownerId: OwnerId, window?: KeysetWindow): Promise<ImportedVoucher[]> {
    const q = this.db.selectFrom('vouchers').selectAll().where('owner_id', '=', ownerId);
    return (await applyKeyset(q, 'created_at', 'guid', window).execute()).map(toVoucher);
  }

  async find(ownerId: OwnerId, guid: string): Promise<ImportedVoucher | undefined> {
    const r = await this.db.selectFrom('vouchers').selectAll().where('owner_id', '=', ownerId).where('guid', '=', guid).executeTakeFirst();
    return r && toVoucher(r);
  }
}
