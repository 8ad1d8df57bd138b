import type { GatewayId, Mac, OwnerId, TipsId } from '@tips/core';
import type { MetalBlock, RegistrationQuery, RegistrationRecord } from './model.ts';

/** Storage port of the discovery domain (tables `discovery_registrations`, `discovery_blocks`). */
export interface DiscoveryStore {
  /**
   * Appends decisions in one transaction and returns, for each, the record that stands: itself, or
   * — when the gateway already registered under the same idempotency key (a retry whose answer was
   * lost) — the record made then, and nothing is added.
   */
  record(records: RegistrationRecord[]): Promise<RegistrationRecord[]>;
  /** The owner's records, newest first (before `before`, if given; or, with `after`, oldest first from that point). */
  list(ownerId: OwnerId, query: RegistrationQuery): Promise<RegistrationRecord[]>;
  /** Every (gateway, MAC) pair for which a gateway was told "blocked" for one of these MACs. */
  gatewaysThatBlocked(macs: Mac[]): Promise<{ gatewayId: GatewayId; mac: Mac }[]>;
  putBlock(block: MetalBlock): Promise<void>;
  removeBlock(metalId: TipsId): Promise<boolean>;
  findBlock(metalId: TipsId): Promise<MetalBlock | undefined>;
  /** Every blocked metal (blocks are few: tampered or quarantined metals). */
  blockedMetalIds(): Promise<TipsId[]>;
}
