import type { OwnerId } from '@tips/core';
import type { Directive, DirectiveKind } from './model.ts';

/** Storage port of the directives domain (table `metal_directives`). */
export interface DirectiveStore {
  insert(d: Directive): Promise<void>;
  /** The newest directive of `kind` for `metalId` (null: owner-wide), or undefined. */
  newest(ownerId: OwnerId, kind: DirectiveKind, metalId: string | null): Promise<Directive | undefined>;
  /** Newest first, at most `limit`. */
  list(ownerId: OwnerId, limit: number): Promise<Directive[]>;
}
