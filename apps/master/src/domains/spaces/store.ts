import type { Tx } from '../../db/database.ts';
import type { GlazeId, OwnerId, SpaceId, TipsId } from '@tips/core';
import type { KeysetWindow } from '../../db/keyset.ts';
import type { Space, SpaceMember } from './model.ts';

export interface MembershipOfMetal extends SpaceMember {
  spaceId: SpaceId;
  phase: Space['phase'];
  spaceName: string;
}

/** Storage port of the spaces domain (tables `spaces`, `space_members`). */
export interface SpaceStore {
  insert(space: Space): Promise<void>;
  update(space: Space): Promise<void>;
  delete(ownerId: OwnerId, id: SpaceId): Promise<boolean>;
  findById(ownerId: OwnerId, id: SpaceId): Promise<Space | undefined>;
  findByName(ownerId: OwnerId, name: string): Promise<Space | undefined>;
  /** Oldest first by (createdAt, id); with a window, at most `limit` after its position. */
  list(ownerId: OwnerId, phase?: number, window?: KeysetWindow): Promise<Space[]>;
  /** By metal ID; with a window, at most `limit` metals whose ID is after `after.id` (`after.at` is unused). */
  members(spaceId: SpaceId, window?: KeysetWindow): Promise<SpaceMember[]>;
  /** Every member's TIPS ID, once each, in one query. */
  memberIds(spaceId: SpaceId): Promise<TipsId[]>;
  /**
   * Replaces a metal's membership of one Space. With `isDefault`, clears the metal's default flag
   * in every other Space in the same transaction, so a metal never has two defaults. `guard` runs
   * first in that transaction and throws to refuse (it checks the metal, its row locked).
   */
  putMember(spaceId: SpaceId, member: SpaceMember, guard?: (tx: Tx) => Promise<void>): Promise<void>;
  /** A new metal's membership, written in the transaction `tx` that creates the metal (no other row of it exists). */
  insertNewMember(spaceId: SpaceId, member: SpaceMember, tx: Tx): Promise<void>;
  removeMember(spaceId: SpaceId, metalId: TipsId): Promise<boolean>;
  removeMetal(metalId: TipsId): Promise<void>;
  removeInterfaces(metalId: TipsId, interfaceNames: string[]): Promise<void>;
  /** With `tx`: as that transaction sees them (a check inside another domain's write). */
  membershipsOfMetal(metalId: TipsId, tx?: Tx): Promise<MembershipOfMetal[]>;
  /** The default Phase 1 Space of each of these metals that has one, in one query. */
  defaultsOfMetals(metalIds: TipsId[]): Promise<{ metalId: TipsId; spaceId: SpaceId; spaceName: string }[]>;
  spacesUsingGlaze(glazeId: GlazeId): Promise<Space[]>;
}
