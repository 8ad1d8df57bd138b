/** Tables of the constrained domain, joined to the master's `Database` type by module augmentation. */
export interface ConstrainedPskTable {
  identity: string;
  owner_id: string;
  metal_id: string;
  /** base64 of nonce (12) ‖ AES-256-GCM ciphertext (16) ‖ tag (16); AAD = identity. */
  sealed_key: string;
  created_at: string;
  revoked_at: string | null;
}

declare module '../../db/schema.ts' {
  interface Database {
    constrained_psks: ConstrainedPskTable;
  }
}
