import type { OwnerId } from '@tips/core';
import type { GlazeManifest, OperatorKey } from './model.ts';

/** Storage port of the keys domain (tables `operator_keys`, `glaze_manifests`). */
export interface KeyStore {
  insert(key: OperatorKey, serverPrivateKeyPem: string | null): Promise<void>;
  list(ownerId: OwnerId, includeRevoked?: boolean): Promise<OperatorKey[]>;
  findById(ownerId: OwnerId, id: string): Promise<{ key: OperatorKey; serverPrivateKeyPem: string | null } | undefined>;
  findByName(ownerId: OwnerId, name: string): Promise<{ key: OperatorKey; serverPrivateKeyPem: string | null } | undefined>;
  revoke(ownerId: OwnerId, id: string, at: string): Promise<boolean>;
  putManifest(m: GlazeManifest): Promise<void>;
  getManifest(ownerId: OwnerId, glazeId: string): Promise<GlazeManifest | undefined>;
}
