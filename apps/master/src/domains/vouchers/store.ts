import type { OnboardingKeyId, OwnerId } from '@tips/core';
import type { KeysetWindow } from '../../db/keyset.ts';
import type { ImportedVoucher, OnboardingKey, OnboardingStatus } from './model.ts';

/** What an import did with one voucher. */
export type ImportOutcome = 'imported' | 'unchanged';

/** Storage port of the vouchers domain (tables `onboarding_keys`, `vouchers`). */
export interface VoucherStore {
  insertKey(key: OnboardingKey, privateKeyPem: string): Promise<void>;
  /** Oldest first by (createdAt, id). */
  listKeys(ownerId: OwnerId, window?: KeysetWindow): Promise<OnboardingKey[]>;
  findKeyById(ownerId: OwnerId, id: string): Promise<OnboardingKey | undefined>;
  findKeyByName(ownerId: OwnerId, name: string): Promise<OnboardingKey | undefined>;
  /**
   * Imports in one transaction: a voucher already stored with the same bytes is `unchanged`; one
   * whose GUID is stored with other bytes makes the whole import fail with `{ conflict: index }`
   * and nothing is written.
   */
  importAll(vouchers: ImportedVoucher[]): Promise<{ outcomes: ImportOutcome[] } | { conflict: number }>;
  /** Oldest first by (createdAt, guid). */
  list(ownerId: OwnerId, window?: KeysetWindow): Promise<ImportedVoucher[]>;
  find(ownerId: OwnerId, guid: string): Promise<ImportedVoucher | undefined>;
  keyName(ownerId: OwnerId, id: OnboardingKeyId): Promise<string | undefined>;
  privateKeyPem(ownerId: OwnerId, id: OnboardingKeyId): Promise<string | undefined>;
  /** Every owner's voucher for this GUID (TO2: the device knows only its GUID). */
  findByGuid(guid: string): Promise<ImportedVoucher[]>;
  setStatus(ownerId: OwnerId, guid: string, status: OnboardingStatus, at: string): Promise<void>;
  putNonce(nonceHash: string, ownerId: OwnerId, guid: string, expiresAt: string): Promise<void>;
  /** Deletes the nonce; true when it was live and given for this owner and GUID. */
  takeNonce(nonceHash: string, ownerId: OwnerId, guid: string, now: string): Promise<boolean>;
}
