import type { OwnerId } from '@tips/core';
import type { KeysetWindow } from '../../db/keyset.ts';
import type { ApiToken, Owner } from './model.ts';

/** Storage port of the owners domain (tables `owners`, `api_tokens`). */
export interface OwnerStore {
  countOwners(): Promise<number>;
  insertOwner(owner: Owner): Promise<void>;
  findOwner(id: OwnerId): Promise<Owner | undefined>;
  /** Oldest first by (createdAt, id); with a window, at most `limit` after its position. */
  listOwners(window?: KeysetWindow): Promise<Owner[]>;
  insertToken(token: ApiToken, tokenHash: string): Promise<void>;
  findOwnerByTokenHash(tokenHash: string): Promise<{ owner: Owner; tokenId: string; lastUsedAt: string | null } | undefined>;
  /** Sets the token's last use to `at` unless it is already `staleBefore` or later (a concurrent touch, another replica). */
  touchToken(tokenId: string, at: string, staleBefore: string): Promise<void>;
  /** Oldest first by (createdAt, id); with a window, at most `limit` after its position. */
  listTokens(ownerId: OwnerId, window?: KeysetWindow): Promise<ApiToken[]>;
  deleteToken(ownerId: OwnerId, tokenId: string): Promise<boolean>;
}
