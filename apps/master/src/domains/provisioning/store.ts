import type { OwnerId, SpaceId, TipsId } from '@tips/core';
import type { KeysetWindow } from '../../db/keyset.ts';
import type { Engine, JobId, JobQuery, JobState, Phase1Job } from './model.ts';

/** Storage port of the provisioning domain (table `provisioning_jobs`). */
export interface ProvisioningStore {
  /** Inserts a job; false when the metal already has an open job (the unique open_metal_id). */
  insert(job: Phase1Job): Promise<boolean>;
  /**
   * Writes `job` only if the stored row is still in state `expected` (compare-and-set): of two
   * concurrent transitions exactly one wins. False when the row moved meanwhile.
   */
  update(job: Phase1Job, expected: JobState): Promise<boolean>;
  findById(id: JobId): Promise<Phase1Job | undefined>;
  findOpen(metalId: TipsId): Promise<Phase1Job | undefined>;
  /** Open jobs that were made for a Space (its deletion ends them). */
  openInSpace(spaceId: SpaceId): Promise<Phase1Job[]>;
  /** Open jobs driven by an engine (engines that install by themselves are asked where they stand). */
  openByEngine(engine: Engine): Promise<Phase1Job[]>;
  /** The metal's newest job, open or not. */
  latest(metalId: TipsId): Promise<Phase1Job | undefined>;
  /** The newest job of the metal that ended `installed`. */
  lastInstalled(metalId: TipsId): Promise<Phase1Job | undefined>;
  /** Newest first by (createdAt, id). */
  list(ownerId: OwnerId, query: JobQuery, window?: KeysetWindow): Promise<Phase1Job[]>;
}
