import type { GlazeId, OwnerId, Phase, SpaceId, TipsId } from '@tips/core';

/** A metal's membership of a Space: which of its interfaces link it (T4). */
export interface SpaceMember {
  metalId: TipsId;
  interfaces: string[];
  isDefault: boolean;
}

/** A Space (T4): a set of metals provisioned together in one phase, optionally with its Glaze. */
export interface Space {
  id: SpaceId;
  ownerId: OwnerId;
  name: string;
  phase: Phase;
  glazeId: GlazeId | null;
  createdAt: string;
  updatedAt: string;
}
