import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { findByRef, newId, type OwnerId, parseName } from '@tips/core';
import { keyFingerprint, parseGuid, guidToString, readVoucherFile, type VerifiedVoucher, VoucherError, verifyVoucher } from '@tips/onboarding';
import { isUniqueViolation } from '../../db/database.ts';
import type { KeysetWindow } from '../../db/keyset.ts';
import type { Clock, Random } from '../../ports.ts';
import { VoucherDomainError, type VoucherDomainErrorCode } from './errors.ts';
import { type ImportedVoucher, MAX_VOUCHERS_PER_IMPORT, type OnboardingKey } from './model.ts';
import type { ImportOutcome, VoucherStore } from './store.ts';

export interface VoucherMetrics {
  imported: { inc(labels: { result: ImportOutcome }, n?: number): void };
  refused: { inc(labels: { reason: string }): void };
}

export interface ImportResult {
  outcome: ImportOutcome;
  voucher: ImportedVoucher;
}

/**
 * Ownership vouchers on the owner's side (issue 11, Z3): the owner's onboarding keys, and the
 * import that verifies each voucher's whole chain ends at one of them. A refusal names the voucher
 * (`vouchers[i]`) and the exact link (entry index, or the header) and writes nothing.
 */
export class VoucherService {
  private metrics: VoucherMetrics | undefined;
  private log: ((obj: Record<string, unknown>, msg: string) => void) | undefined;

  constructor(
    private readonly store: VoucherStore,
    private readonly clock: Clock,
    private readonly random: Random,
  ) {}

  useMetrics(m: VoucherMetrics): void {
    this.metrics = m;
  }

  useLog(log: (obj: Record<string, unknown>, msg: string) => void): void {
    this.log = log;
  }

  /** Makes a P-256 onboarding key the master holds: devices will be handed to it. */
  async createKey(ownerId: OwnerId, input: { name: string }): Promise<OnboardingKey> {
    const name = parseName(input.name);
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const key: OnboardingKey = {
      id: newId('onboardingKey', this.random.bytes(16)),
      ownerId,
      name,
      alg: 'ES256',
      publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      fingerprint: keyFingerprint(publicKey),
      createdAt: this.clock.now().toISOString(),
    };
    if (await this.store.findKeyByName(ownerId, name)) throw new VoucherDomainError('onboarding_key_name_taken', `you already have an onboarding key named "${name}"`, 'name');
    try {
      await this.store.insertKey(key, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    } catch (e) {
      if (isUniqueViolation(e)) throw new VoucherDomainError('onboarding_key_name_taken', `you already have an onboarding key named "${name}"`, 'name');
      throw e;
    }
    return key;
  }

  listKeys(ownerId: OwnerId, window?: KeysetWindow): Promise<OnboardingKey[]> {
    return this.store.listKeys(ownerId, window);
  }

  async getKey(ownerId: OwnerId, ref: string): Promise<OnboardingKey> {
    const k = await findByRef('onboardingKey', ref, (id) => this.store.findKeyById(ownerId, id), (name) => this.store.findKeyByName(ownerId, name));
    if (!k) throw new VoucherDomainError('onboarding_key_not_found', `no onboarding key "${ref.slice(0, 64)}"`, 'key');
    return k;
  }

  /** The owner's onboarding public keys, all of them (an owner has a handful). */
  private async ownerKeys(ownerId: OwnerId): Promise<{ keys: OnboardingKey[]; objects: KeyObject[] }> {
    const keys: OnboardingKey[] = [];
    for (let after: KeysetWindow['after']; ; ) {
      const page = await this.store.listKeys(ownerId, { limit: 1000, ...(after ? { after } : {}) });
      keys.push(...page);
      if (page.length < 1000) break;
      const last = page[page.length - 1]!;
      after = { at: last.createdAt, id: last.id };
    }
    return { keys, objects: keys.map((k) => createPublicKey(k.publicKeyPem)) };
  }

  private refuse(index: number, code: VoucherDomainErrorCode, message: string): never {
    this.metrics?.refused.inc({ reason: code });
    this.log?.({ index, code }, 'voucher refused');
    throw new VoucherDomainError(code, `vouchers[${index}]: ${message}`, `vouchers[${index}]`);
  }

  /**
   * Bulk import, all or nothing, idempotent: each voucher (CBOR, or the armoured text) is verified
   * in full against this owner's onboarding keys; the first refusal stops the import and nothing is
   * written. A voucher already imported with the same bytes is `unchanged`; a GUID imported with
   * other bytes is a conflict.
   */
  async import(ownerId: OwnerId, vouchers: Uint8Array[]): Promise<ImportResult[]> {
    if (vouchers.length === 0 || vouchers.length > MAX_VOUCHERS_PER_IMPORT) {
      throw new VoucherDomainError('voucher_malformed', `expected 1 to ${MAX_VOUCHERS_PER_IMPORT} vouchers, came ${vouchers.length}`, 'vouchers');
    }
    const { keys, objects } = await this.ownerKeys(ownerId);
    const now = this.clock.now().toISOString();
    const rows: ImportedVoucher[] = vouchers.map((raw, i) => {
      let v: VerifiedVoucher;
      try {
        v = verifyVoucher(readVoucherFile(raw), objects);
      } catch (e) {
        if (!(e instanceof VoucherError)) throw e;
        const code = e.code === 'voucher_not_current_owner' || e.code === 'credential_invalid' || e.code === 'voucher_bad_input' ? 'voucher_malformed' : e.code;
        const hint = e.code === 'voucher_wrong_owner' && keys.length === 0 ? ' (you have no onboarding key yet: `tips voucher owner-key create`)' : '';
        return this.refuse(i, code, `${e.message}${hint}`);
      }
      return {
        ownerId,
        guid: v.guid,
        sha256: v.sha256,
        voucher: readVoucherFile(raw),
        deviceInfo: v.deviceInfo,
        rendezvous: v.rendezvousUrls,
        manufacturerKey: keyFingerprint(v.manufacturerKey),
        deviceKeyPem: v.deviceKey.key.export({ type: 'spki', format: 'pem' }).toString(),
        ownerChain: v.owners.map((k) => keyFingerprint(k)),
        onboardingKeyId: keys[v.ownerKeyIndex]!.id,
        status: 'imported',
        createdAt: now,
        updatedAt: now,
      };
    });
    let result = await this.importOnce(rows);
    if (result === 'raced') result = await this.importOnce(rows);
    if (result === 'raced') throw new Error('voucher import raced twice with another import of the same GUIDs');
    if ('conflict' in result) {
      const i = result.conflict;
      return this.refuse(i, 'voucher_conflict', `device ${rows[i]!.guid} was imported before with another voucher; an imported voucher is never replaced`);
    }
    const outcomes = result.outcomes;
    const imported = outcomes.filter((o) => o === 'imported').length;
    if (imported > 0) this.metrics?.imported.inc({ result: 'imported' }, imported);
    if (outcomes.length > imported) this.metrics?.imported.inc({ result: 'unchanged' }, outcomes.length - imported);
    this.log?.({ imported, unchanged: outcomes.length - imported }, 'vouchers imported');
    const stored = await Promise.all(rows.map(async (r, i) => (outcomes[i] === 'imported' ? r : ((await this.store.find(ownerId, r.guid)) ?? r))));
    return stored.map((voucher, i) => ({ outcome: outcomes[i]!, voucher }));
  }

  /** One transaction; a unique violation means another import of the same GUID won the race. */
  private async importOnce(rows: ImportedVoucher[]): Promise<{ outcomes: ImportOutcome[] } | { conflict: number } | 'raced'> {
    try {
      return await this.store.importAll(rows);
    } catch (e) {
      if (isUniqueViolation(e)) return 'raced';
      throw e;
    }
  }

  list(ownerId: OwnerId, window?: KeysetWindow): Promise<ImportedVoucher[]> {
    return this.store.list(ownerId, window);
  }

  async get(ownerId: OwnerId, guidText: string): Promise<ImportedVoucher> {
    const guid = parseGuid(guidText);
    const found = guid && (await this.store.find(ownerId, guidToString(guid)));
    if (!found) throw new VoucherDomainError('voucher_not_found', `no voucher for device "${guidText.slice(0, 64)}"`, 'guid');
    return found;
  }

  keyName(ownerId: OwnerId, v: ImportedVoucher): Promise<string | undefined> {
    return this.store.keyName(ownerId, v.onboardingKeyId);
  }
}
