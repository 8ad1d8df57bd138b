import type { OwnerId } from '@tips/core';

/**
 * An operator's manifest signing key (S5, S8). The master keeps the public key only; a private key
 * lives here only when the owner explicitly asked for a server-held key (hobby use), and every
 * response about such a key says so.
 */
export interface OperatorKey {
  id: string;
  ownerId: OwnerId;
  name: string;
  alg: 'ES256' | 'EdDSA';
  publicKeyPem: string;
  /** Hex SHA-256 of the SPKI DER. */
  kid: string;
  serverHeld: boolean;
  createdAt: string;
  revokedAt: string | null;
}

export interface GlazeManifest {
  glazeId: string;
  ownerId: OwnerId;
  keyId: string;
  envelope: Uint8Array;
  sequenceNumber: string;
  createdAt: string;
}

export const SERVER_HELD_WARNING = 'this key is held by the master (hobby mode): anyone who controls the master can sign manifests with it';
export const SUIT_ENVELOPE_MEDIA = 'application/suit-envelope+cose';
export const MAX_ENVELOPE_BYTES = 256 * 1024;
