/** Tables of the rendezvous domain (FDO's RV server: TO0 registrations, TO1 challenges). */
export interface RendezvousRegistrationsTable {
  /** Device GUID, 8-4-4-4-12 lower-case hex. */
  guid: string;
  /** The device key the registered voucher binds, SPKI PEM: TO1 proofs are checked against it. */
  device_key: string;
  /** JSON array: key fingerprints of the voucher's entries; a later registration must extend it. */
  owner_chain: string;
  /** The owner's signed redirect, base64. */
  to1d: string;
  expires_at: string;
  created_at: string;
  updated_at: string;
}

export interface RendezvousNoncesTable {
  /** Hex SHA-256 of the nonce. */
  nonce_hash: string;
  guid: string;
  expires_at: string;
}

declare module '../../db/schema.ts' {
  interface Database {
    rendezvous_registrations: RendezvousRegistrationsTable;
    rendezvous_nonces: RendezvousNoncesTable;
  }
}
