/**
 * Tables of the gateways domain added after the shared schema: they join the master's `Database`
 * type by module augmentation, as the enrollment domain's do.
 */
export interface GatewayCertificatesTable {
  serial: string;
  gateway_id: string;
  owner_id: string;
  /** Lower-case hex SHA-256 of the certificate's DER. */
  fingerprint: string;
  not_before: string;
  not_after: string;
  /** 'active' or 'revoked' (the gateway was removed). */
  status: string;
  created_at: string;
  revoked_at: string | null;
}

declare module '../../db/schema.ts' {
  interface Database {
    gateway_certificates: GatewayCertificatesTable;
  }
}
