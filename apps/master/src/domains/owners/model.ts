import type { OwnerId } from '@tips/core';

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
