import type { GatewayId, InterfaceType, Mac, OwnerId, TipsId } from '@tips/core';

export const DECISIONS = ['active', 'blocked'] as const;
export type Decision = (typeof DECISIONS)[number];

/**
 * Why TIPS-D refused a registration (T6), in the order the rule checks them. `foreign_gateway`
 * (the metal was another owner's) is no longer decided since MACs are unique per owner (0005): the
 * rule looks only at the gateway owner's metals. It stays here for records made before.
 */
export const BLOCK_REASONS = ['unknown_mac', 'metal_blocked', 'no_default_space', 'foreign_gateway'] as const;
export type BlockReason = (typeof BLOCK_REASONS)[number];

/** What a gateway reports when a metal joins (T5). */
export interface RegistrationInput {
  mac: Mac;
  ip: string;
  gatewayInterface: string;
  interfaceType: InterfaceType;
  pxe: boolean;
  hostname: string | null;
  /**
   * The gateway's key for this registration, kept across its retries (issue 13): a retry whose
   * first attempt was recorded is answered from that record, never recorded twice. Unique per gateway.
   */
  idempotencyKey: string | null;
}

/** TIPS-D's answer to the gateway. */
export type DecisionResult = { decision: 'active'; tipsId: TipsId } | { decision: 'blocked'; reason: BlockReason; tipsId?: TipsId };

/** One decision as recorded (T9): every registration, accepted or not. */
export interface RegistrationRecord extends RegistrationInput {
  id: string;
  at: string;
  /** The owner of the gateway that asked: the records are visible to that owner. */
  ownerId: OwnerId;
  gatewayId: GatewayId;
  decision: Decision;
  reason: BlockReason | null;
  tipsId: TipsId | null;
}

export interface RegistrationQuery {
  mac?: Mac;
  gatewayId?: string;
  reason?: string;
  decision?: Decision;
  /** ISO-8601: only records at or after this time. */
  since?: string;
  limit: number;
  /** Keyset paging for exports: records strictly after this (at, id), oldest first. */
  after?: { at: string; id: string };
  /** Keyset paging for lists: records strictly before this (at, id), newest first. */
  before?: { at: string; id: string };
}

/** A metal blocked by its owner or by the tamper response (T16), until unblocked. */
export interface MetalBlock {
  metalId: TipsId;
  ownerId: OwnerId;
  reason: string | null;
  blockedAt: string;
}

export const MAX_LIST_LIMIT = 1000;
export const DEFAULT_LIST_LIMIT = 100;
