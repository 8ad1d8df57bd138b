import type { GlazeId, OwnerId, Phase, SpaceId, TipsId } from '@tips/core';
import type { Engine, EngineRule } from '../provisioning/model.ts';

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
  /** The Phase 1 engine of the metals this Space provisions (A5; default builtin). */
  engine: Engine;
  /** Rules choosing another engine for some of those metals by label (first match wins; a metal's own setting still wins). */
  engineRules: EngineRule[];
  createdAt: string;
  updatedAt: string;
}
