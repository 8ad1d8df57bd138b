/** Tables of the keys domain, joined to the master's `Database` type by module augmentation. */
export interface OperatorKeysTable {
  id: string;
  owner_id: string;
  name: string;
  /** 'ES256' or 'EdDSA'. */
  alg: string;
  /** SubjectPublicKeyInfo, PEM. */
  public_key: string;
  /** Hex SHA-256 of the SPKI DER: the COSE kid manifests carry. */
  kid: string;
  /** PKCS#8 PEM, only for an owner who opted into a server-held key (hobby use). */
  server_private_key: string | null;
  created_at: string;
  revoked_at: string | null;
}

/** The operator-signed SUIT envelope attached to a Glaze (one per Glaze; a new one replaces it). */
export interface GlazeManifestsTable {
  glaze_id: string;
  owner_id: string;
  key_id: string;
  envelope: string;
  sequence_number: string;
  created_at: string;
}

declare module '../../db/schema.ts' {
  interface Database {
    operator_keys: OperatorKeysTable;
    glaze_manifests: GlazeManifestsTable;
  }
}
