import type { OwnerId, TipsId } from '@tips/core';

/**
 * A DTLS pre-shared key credential of one metal (CONTRACT F): identity `<metalId>.<n>`, 16 random
 * bytes shown once. The key itself is stored sealed (AES-256-GCM under the master's PSK wrapping
 * key, the identity as associated data) because the DTLS handshake needs it in the clear.
 */
export interface PskCredential {
  identity: string;
  ownerId: OwnerId;
  metalId: TipsId;
  createdAt: string;
  revokedAt: string | null;
}

export const PSK_KEY_BYTES = 16;
/** Live (unrevoked) credentials one metal may hold: enough to rotate, too few to hoard. */
export const MAX_LIVE_PSKS_PER_METAL = 4;
export const PSK_IDENTITY_RE = /^[A-Za-z0-9_-]{1,64}\.[0-9]{1,9}$/;
export const CBOR_FORMAT = 60;
export const COSE_SIGN1_FORMAT = 18;
export const OCTET_STREAM_FORMAT = 42;
