import type { OwnerId } from '@tips/core';

/**
 * A signed order to metals (S5, S6, S14): a SUIT envelope an operator signed with a key of the
 * metals' trust list. The master stores and serves it; it cannot make or alter one — the metal
 * verifies it against its own trust list before acting.
 *
 *   trust-list  component ["tips","trust-list"], the new @tips/trust list as integrated payload;
 *               for every metal of the owner
 *   reenroll    component ["tips","enrollment"], @tips/trust encodeReenrollment({ estUri, secretId,
 *               secret }) as integrated payload: enroll again with a new key and this one-use
 *               secret (key rotation; S6 "re-enrollment with a new secret in the update"); for one metal
 */
export type DirectiveKind = 'trust-list' | 'reenroll';

export interface Directive {
  id: string;
  ownerId: OwnerId;
  kind: DirectiveKind;
  /** The metal a reenroll order is for; null for a trust-list update (all the owner's metals). */
  metalId: string | null;
  /** The operator key (ID) that signed it, as the master saw at upload. */
  keyId: string;
  sequenceNumber: string;
  envelope: Uint8Array;
  createdAt: string;
}

export const MAX_DIRECTIVE_BYTES = 64 * 1024;
