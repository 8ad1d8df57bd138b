/** Storage port of the rendezvous domain. */
export interface RendezvousRegistration {
  guid: string;
  deviceKeyPem: string;
  ownerChain: string[];
  to1d: Uint8Array;
  expiresAt: string;
  createdAt: string;
  updatedAt: string;
}

export interface RendezvousStore {
  find(guid: string): Promise<RendezvousRegistration | undefined>;
  /** Inserts or replaces; `guard` runs in the transaction with the stored row (if any) and may throw. */
  upsert(r: RendezvousRegistration, guard: (existing: RendezvousRegistration | undefined) => void): Promise<void>;
  putNonce(nonceHash: string, guid: string, expiresAt: string): Promise<void>;
  /** Deletes the nonce; true when it existed for `guid` and had not expired at `now`. */
  takeNonce(nonceHash: string, guid: string, now: string): Promise<boolean>;
}
