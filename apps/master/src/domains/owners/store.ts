import type { OwnerId } from '@tips/core';
import type { ApiToken, Owner } from './model.ts';

/** Storage port of the owners domain (tables `owners`, `api_tokens`). */
export interface OwnerStore {
  countOwners(): Promise<number>;
  insertOwner(owner: Owner): Promise<void>;
  findOwner(id: OwnerId): Promise<Owner | undefined>;
  listOwners(): Promise<Owner[]>;
  insertToken(token: ApiToken, tokenHash: string): Promise<void>;
  findOwnerByTokenHash(tokenHash: string): Promise<{ owner: Owner; tokenId: string } | undefined>;
  touchToken(tokenId: string, at: string): Promise<void>;
  listTokens(ownerId: OwnerId): Promise<ApiToken[]>;
  deleteToken(ownerId: OwnerId, tokenId: string): Promise<boolean>;
}
