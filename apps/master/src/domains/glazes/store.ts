import type { GlazeId, OwnerId, SpaceId } from '@tips/core';
import type { KeysetWindow } from '../../db/keyset.ts';
import type { Glaze } from './model.ts';

/** Storage port of the glazes domain (tables `glazes`, `glaze_spaces`). */
export interface GlazeStore {
  insert(glaze: Glaze): Promise<void>;
  update(glaze: Glaze): Promise<void>;
  delete(ownerId: OwnerId, id: GlazeId): Promise<boolean>;
  findById(ownerId: OwnerId, id: GlazeId): Promise<Glaze | undefined>;
  findByName(ownerId: OwnerId, name: string): Promise<Glaze | undefined>;
  /** Oldest first by (createdAt, id); with a window, at most `limit` after its position. */
  list(ownerId: OwnerId, spaceId?: SpaceId, window?: KeysetWindow): Promise<Glaze[]>;
  forgetSpace(spaceId: SpaceId): Promise<void>;
  /** Which of these blob keys a Glaze row (of any owner) references: reconciliation's question. */
  referencedBlobKeys(keys: string[]): Promise<Set<string>>;
}
