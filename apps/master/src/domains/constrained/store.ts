import type { TipsId } from '@tips/core';
import type { PskCredential } from './model.ts';

/** Storage port of the constrained domain (table `constrained_psks`). */
export interface ConstrainedStore {
  insertPsk(c: PskCredential, sealedKey: Uint8Array): Promise<void>;
  /** Every credential of a metal, oldest first (revoked ones too). */
  listPsks(metalId: TipsId): Promise<PskCredential[]>;
  findPsk(identity: string): Promise<{ credential: PskCredential; sealedKey: Uint8Array } | undefined>;
  revokePsk(metalId: TipsId, identity: string, at: string): Promise<boolean>;
  forgetMetal(metalId: TipsId): Promise<void>;
}
