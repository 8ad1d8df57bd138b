import type { GlazeId, OwnerId, SpaceId } from '@tips/core';
import type { Glaze } from './model.ts';

/** Storage port of the glazes domain (tables `glazes`, `glaze_spaces`). */
export interface GlazeStore {
  insert(glaze: Glaze): Promise<void>;
  update(glaze: Glaze): Promise<void>;
  delete(ownerId: OwnerId, id: GlazeId): Promise<boolean>;
  findById(ownerId: OwnerId, id: GlazeId): Promise<Glaze | undefined>;
  findByName(ownerId: OwnerId, name: string): Promise<Glaze | undefined>;
  list(ownerId: OwnerId, spaceId?: SpaceId): Promise<Glaze[]>;
  forgetSpace(spaceId: SpaceId): Promise<void>;
  /** Which of these blob keys a Glaze row (of any owner) references: reconciliation's question. */
  referencedBlobKeys(keys: string[]): Promise<Set<string>>;
}
