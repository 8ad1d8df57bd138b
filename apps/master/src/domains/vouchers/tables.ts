/** Tables of the vouchers domain, joined to the master's `Database` type by module augmentation. */

/** An owner's onboarding key: the key vouchers are signed over to (FDO's owner key). */
export interface OnboardingKeysTable {
  id: string;
  owner_id: string;
  name: string;
  /** 'ES256' (P-256). */
  alg: string;
  /** SubjectPublicKeyInfo, PEM. */
  public_key: string;
  /** Hex SHA-256 of the SPKI DER. */
  fingerprint: string;
  /** PKCS#8 PEM: the master proves ownership to devices (TO2) and signs rendezvous registrations (TO0) with it. */
  private_key: string;
  created_at: string;
}

/** One imported ownership voucher per (owner, device GUID), and the device's onboarding status. */
export interface VouchersTable {
  owner_id: string;
  /** Device GUID, 8-4-4-4-12 lower-case hex. */
  guid: string;
  /** Hex SHA-256 of the voucher bytes: the same voucher imported again is the same import. */
  sha256: string;
  /** The voucher's CBOR, base64. */
  voucher: string;
  device_info: string;
  /** JSON array of rendezvous URLs. */
  rendezvous: string;
  /** Hex SHA-256 of the manufacturer key's SPKI. */
  manufacturer_key: string;
  /** The device key bound in the voucher, SPKI PEM (what the device must prove it holds). */
  device_key: string;
  /** JSON array: fingerprint of each key the entries hand the device to, in order. */
  owner_chain: string;
  onboarding_key_id: string;
  /** 'imported' | 'rendezvous_registered' | 'onboarded'. */
  status: string;
  created_at: string;
  updated_at: string;
}

/** TO2 challenges the owner's master gave devices (single use, 2 minutes). */
export interface OnboardingNoncesTable {
  nonce_hash: string;
  owner_id: string;
  guid: string;
  expires_at: string;
}

declare module '../../db/schema.ts' {
  interface Database {
    onboarding_keys: OnboardingKeysTable;
    vouchers: VouchersTable;
    onboarding_nonces: OnboardingNoncesTable;
  }
}
