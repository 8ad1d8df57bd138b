import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { findByRef, newId, type OwnerId, parseName } from '@tips/core';
import {
  guidToString,
  keyFingerprint,
  nonceDigest,
  nonceFrom,
  parseGuid,
  readVoucherFile,
  sealSetup,
  signProof,
  signTo1d,
  type VerifiedVoucher,
  VoucherError,
  verifyVoucher,
} from '@tips/onboarding';
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
    /** How the master reaches rendezvous servers (a port, so tests can see what is sent). */
    private readonly fetchImpl: typeof fetch = fetch,
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
      let bytes: Uint8Array;
      try {
        bytes = readVoucherFile(raw);
        v = verifyVoucher(bytes, objects);
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
        voucher: bytes,
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

  // ---------------------------------------------------------------- rendezvous (TO0) and TO2

  /** Parsed once per key: an onboarding key is never changed, only made. */
  private readonly ownerKeys_ = new Map<string, KeyObject>();

  private async ownerKeyOf(v: ImportedVoucher): Promise<KeyObject> {
    const cached = this.ownerKeys_.get(v.onboardingKeyId);
    if (cached) return cached;
    const pem = await this.store.privateKeyPem(v.ownerId, v.onboardingKeyId);
    if (!pem) throw new Error(`onboarding key ${v.onboardingKeyId} of voucher ${v.guid} is gone`);
    const key = createPrivateKey(pem);
    if (this.ownerKeys_.size > 1000) this.ownerKeys_.clear();
    this.ownerKeys_.set(v.onboardingKeyId, key);
    return key;
  }

  /**
   * TO0: tells each rendezvous address in the voucher header where this device should go
   * (`ownerAddress`, this master), with a to1d signed by the onboarding key the voucher ends at.
   * Registered at one at least → `rendezvous_registered`.
   */
  async registerRendezvous(ownerId: OwnerId, guidText: string, ownerAddress: string, ttlSeconds = 7 * 86_400): Promise<{ voucher: ImportedVoucher; registered: string[] }> {
    const v = await this.get(ownerId, guidText);
    if (v.rendezvous.length === 0) throw new VoucherDomainError('rendezvous_failed', 'the voucher names no rendezvous address');
    const now = this.clock.now();
    const to1d = signTo1d(await this.ownerKeyOf(v), { guid: parseGuid(v.guid)!, addresses: [ownerAddress], expiresAt: Math.floor(now.getTime() / 1000) + ttlSeconds });
    const body = JSON.stringify({ voucher: Buffer.from(v.voucher).toString('base64'), to1d: Buffer.from(to1d).toString('base64') });
    const registered: string[] = [];
    const failures: string[] = [];
    for (const rv of v.rendezvous) {
      try {
        const res = await this.fetchImpl(new URL('/api/rendezvous/v1/registrations', rv), { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(15_000) });
        if (res.ok) registered.push(rv);
        else failures.push(`${rv}: ${res.status} ${((await res.json().catch(() => ({}))) as { error?: { code?: string; message?: string } }).error?.message ?? ''}`.trim());
      } catch (e) {
        failures.push(`${rv}: ${(e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message}`);
      }
    }
    this.log?.({ guid: v.guid, registered, failures }, 'rendezvous registration');
    if (registered.length === 0) throw new VoucherDomainError('rendezvous_failed', `no rendezvous server took the registration: ${failures.join('; ')}`);
    if (v.status === 'imported') await this.store.setStatus(ownerId, v.guid, 'rendezvous_registered', now.toISOString());
    return { voucher: (await this.store.find(ownerId, v.guid))!, registered };
  }

  /** The voucher TO2 talks about: by GUID alone, the one registered at rendezvous first. */
  async forDevice(guidText: string): Promise<ImportedVoucher> {
    const g = parseGuid(guidText);
    if (!g) throw new VoucherDomainError('onboarding_malformed', 'guid: expected a device GUID', 'guid');
    const all = await this.store.findByGuid(guidToString(g));
    const v = all.find((x) => x.status !== 'imported') ?? all[0];
    if (!v) throw new VoucherDomainError('guid_unknown', 'this master holds no voucher for the device', 'guid');
    return v;
  }

  /**
   * TO2 step 1: the device sends its GUID and a nonce; the owner answers with the voucher, its own
   * nonce, and a proof over both signed by the onboarding key the voucher ends at — so the device
   * knows it talks to its owner before it proves anything itself.
   */
  async to2Hello(guidText: string | ImportedVoucher, deviceNonce: Uint8Array): Promise<{ voucher: Uint8Array; ownerNonce: Uint8Array; ownerProof: Uint8Array }> {
    let nonce: Uint8Array;
    try {
      nonce = nonceFrom(deviceNonce, 'nonce');
    } catch (e) {
      throw new VoucherDomainError('onboarding_malformed', (e as Error).message, 'nonce');
    }
    // The caller may hand the voucher it looked up already (bootstrap's hello): one query fewer.
    const v = typeof guidText === 'string' ? await this.forDevice(guidText) : guidText;
    const ownerNonce = this.random.bytes(16);
    const now = this.clock.now();
    await this.store.putNonce(nonceDigest(ownerNonce), v.ownerId, v.guid, new Date(now.getTime() + 2 * 60_000).toISOString());
    const ownerProof = signProof(await this.ownerKeyOf(v), 'tips-to2-owner', [parseGuid(v.guid)!, nonce, ownerNonce]);
    return { voucher: v.voucher, ownerNonce, ownerProof };
  }

  /** TO2 step 2 (the bootstrap domain runs it): the owner nonce is live and was given for this voucher's device; it is spent. */
  takeTo2Nonce(v: ImportedVoucher, nonce: Uint8Array): Promise<boolean> {
    return this.store.takeNonce(nonceDigest(nonce), v.ownerId, v.guid, this.clock.now().toISOString());
  }

  /** The device proved its key and became a metal: the voucher is spent (status `onboarded`). */
  async markOnboarded(v: ImportedVoucher): Promise<void> {
    await this.store.setStatus(v.ownerId, v.guid, 'onboarded', this.clock.now().toISOString());
    this.log?.({ guid: v.guid, ownerId: v.ownerId }, 'device onboarded');
  }

  /** TO2's last message: `plaintext` encrypted to the device's setup key, signed with the onboarding key the voucher ends at. */
  async sealSetup(v: ImportedVoucher, nonce: Uint8Array, deviceSetupKey: Uint8Array, plaintext: Uint8Array): Promise<Uint8Array> {
    return sealSetup(await this.ownerKeyOf(v), parseGuid(v.guid)!, nonce, deviceSetupKey, plaintext);
  }
}
