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
  /** How a metal installs it in Phases 2–3 (TIPS-C install handlers); default `archive`. */
  handler: GlazeHandler;
  /** The operator's version label, e.g. "1.4" (`web@1.4` references it); null when none was given. */
  version: string | null;
}

export const GLAZE_HANDLERS = ['archive', 'rootfs-ab', 'systemd-service', 'script'] as const;
export type GlazeHandler = (typeof GLAZE_HANDLERS)[number];
/** A version label: what `name@version` references take after the @. */
export const VERSION_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,31}$/;
