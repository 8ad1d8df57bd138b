import type { OnboardingKeyId, OwnerId } from '@tips/core';
import type { KeysetWindow } from '../../db/keyset.ts';
import type { ImportedVoucher, OnboardingKey } from './model.ts';

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
}
