import type { GlazeId, OwnerId, Sha256, SpaceId } from '@tips/core';

/** A Glaze (T12): an image payload in the repository, its digest, and the Spaces allowed to use it. */
export interface Glaze {
  id: GlazeId;
  ownerId: OwnerId;
  name: string;
  size: number;
  sha256: Sha256;
  mediaType: string;
  createdAt: string;
  spaces: SpaceId[];
}
