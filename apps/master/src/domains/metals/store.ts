import type { Mac, OwnerId, TipsId } from '@tips/core';
import type { KeysetWindow } from '../../db/keyset.ts';
import type { Metal } from './model.ts';

export interface MacHolder {
  mac: Mac;
  metalId: TipsId;
  ownerId: OwnerId;
  metalName: string;
  interfaceName: string;
}

export interface MetalQuery {
  name?: string;
  label?: { key: string; value: string };
  /** Only these metals (a profile query of the updates domain chose them). */
  ids?: readonly string[];
}

/** Storage port of the metals domain (tables `metals`, `metal_interfaces`). */
export interface MetalStore {
  insert(metal: Metal): Promise<void>;
  /** Replaces the metal's row and its whole interface list in one transaction. */
  update(metal: Metal): Promise<void>;
  delete(ownerId: OwnerId, id: TipsId): Promise<boolean>;
  findById(ownerId: OwnerId, id: TipsId): Promise<Metal | undefined>;
  findByName(ownerId: OwnerId, name: string): Promise<Metal | undefined>;
  /** The owner's metals, oldest first by (createdAt, id); with a window, at most `limit` after its position. */
  list(ownerId: OwnerId, query?: MetalQuery, window?: KeysetWindow): Promise<Metal[]>;
  /** Which of the owner's metals hold these MACs: a MAC is unique per owner only (0005, T6). */
  findMacHolders(ownerId: OwnerId, macs: Mac[]): Promise<MacHolder[]>;
}
