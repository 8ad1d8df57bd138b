import type { OwnerId } from '@tips/core';

/** An API token as the owner holds it: `tips_` and 32–128 base64url characters (the master makes 43). */
export const API_TOKEN_FORMAT = /^tips_[A-Za-z0-9_-]{32,128}$/;

/** An owner (user) of metals, Spaces and Glazes — the "DURM" of the paper. */
export interface Owner {
  id: OwnerId;
  name: string;
  isAdmin: boolean;
  createdAt: string;
}

export interface ApiToken {
  id: string;
  ownerId: OwnerId;
  name: string;
  createdAt: string;
  lastUsedAt: string | null;
}
