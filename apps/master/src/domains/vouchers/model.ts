import type { OnboardingKeyId, OwnerId } from '@tips/core';

/** An owner's onboarding key (FDO's owner key): vouchers must end at one of these to be imported. */
export interface OnboardingKey {
  id: OnboardingKeyId;
  ownerId: OwnerId;
  name: string;
  alg: 'ES256';
  publicKeyPem: string;
  /** Hex SHA-256 of the SPKI DER (how vouchers and messages name a key). */
  fingerprint: string;
  createdAt: string;
}

/** Where a device is on its way in: imported → rendezvous_registered → onboarded. */
export const ONBOARDING_STATUSES = ['imported', 'rendezvous_registered', 'onboarded'] as const;
export type OnboardingStatus = (typeof ONBOARDING_STATUSES)[number];

/** An imported voucher and the facts verification established. */
export interface ImportedVoucher {
  ownerId: OwnerId;
  guid: string;
  sha256: string;
  voucher: Uint8Array;
  deviceInfo: string;
  rendezvous: string[];
  manufacturerKey: string;
  deviceKeyPem: string;
  ownerChain: string[];
  onboardingKeyId: OnboardingKeyId;
  status: OnboardingStatus;
  createdAt: string;
  updatedAt: string;
}

/** Vouchers per import request: a bulk import is one transaction, all or nothing. */
export const MAX_VOUCHERS_PER_IMPORT = 1000;
