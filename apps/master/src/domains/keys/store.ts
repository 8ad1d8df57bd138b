import type { OwnerId } from '@tips/core';
import type { KeysetWindow } from '../../db/keyset.ts';
import type { GlazeManifest, OperatorKey } from './model.ts';

/** Storage port of the keys domain (tables `operator_keys`, `glaze_manifests`). */
export interface KeyStore {
  insert(key: OperatorKey, serverPrivateKeyPem: string | null): Promise<void>;
  /** Oldest first by (createdAt, id); with a window, at most `limit` after its position. */
  list(ownerId: OwnerId, includeRevoked?: boolean, window?: KeysetWindow): Promise<OperatorKey[]>;
  findById(ownerId: OwnerId, id: string): Promise<{ key: OperatorKey; serverPrivateKeyPem: string | null } | undefined>;
  findByName(ownerId: OwnerId, name: string): Promise<{ key: OperatorKey; serverPrivateKeyPem: string | null } | undefined>;
  revoke(ownerId: OwnerId, id: string, at: string): Promise<boolean>;
  putManifest(m: GlazeManifest): Promise<void>;
  getManifest(ownerId: OwnerId, glazeId: string): Promise<GlazeManifest | undefined>;
  /** Who signed each of these Glazes' manifests (those that have one), without the envelopes, in one query. */
  signersOf(ownerId: OwnerId, glazeIds: string[]): Promise<{ glazeId: string; keyId: string; sequenceNumber: string; createdAt: string }[]>;
}
