import type { GlazeId, OwnerId, SpaceId, TipsId } from '@tips/core';
import type { GlazeHandler } from '../glazes/model.ts';

/** What a metal says about itself (S7): re-registered after every install. */
export interface MetalProfile {
  metalId: TipsId;
  ownerId: OwnerId;
  vendorId: string | null;
  classId: string | null;
  glazes: { id: string; name: string; version: string; sequence: number }[];
  interfaces: { name: string; mac: string; addresses: string[] }[];
  protocols: string[];
  updatedAt: string;
}

export type ReportResult = 'installed' | 'failed' | 'rolled_back';
export const REPORT_RESULTS: readonly ReportResult[] = ['installed', 'failed', 'rolled_back'];

/** The state of one metal in one Phase 2/3 Space: what it runs there and how its last attempt went. */
export interface Installation {
  metalId: TipsId;
  spaceId: SpaceId;
  ownerId: OwnerId;
  installedGlazeId: GlazeId | null;
  installedSequence: number | null;
  installedAt: string | null;
  lastGlazeId: GlazeId;
  lastResult: ReportResult;
  lastReason: string | null;
  updatedAt: string;
  /** Set by the `rolled_back` report that left the installed Glaze: the Glaze left (installedGlazeId is what runs now). */
  rolledBackFrom?: GlazeId;
}

/** One signed report a metal sent (the history `tips metal show` prints). */
export interface InstallReport {
  id: string;
  ownerId: OwnerId;
  metalId: TipsId;
  spaceId: SpaceId;
  glazeId: GlazeId;
  result: ReportResult;
  reason: string | null;
  sequence: number;
  at: string;
  /** The COSE_Sign1 as received. */
  cose: Uint8Array;
  createdAt: string;
}

export type MetalEventKind = 'tamper' | 'auth_failure' | 'rollback_requested' | 'rolled_back';
export const METAL_EVENT_KINDS: readonly MetalEventKind[] = ['tamper', 'auth_failure', 'rollback_requested', 'rolled_back'];

/** Something the owner must see about a metal (T16 tamper, refused authentications, rollback requests, rollbacks done). */
export interface MetalEvent {
  id: string;
  ownerId: OwnerId;
  metalId: TipsId;
  kind: MetalEventKind;
  code: string;
  detail: Record<string, unknown>;
  createdAt: string;
}

export interface TamperChange {
  path: string;
  kind: 'modified' | 'added' | 'removed' | 'package';
  detail: string;
}
export const TAMPER_KINDS: readonly TamperChange['kind'][] = ['modified', 'added', 'removed', 'package'];

/** One unit of Phase 2/3 work: the Glaze a Space assigns, with its signed manifest. */
export interface WorkItem {
  spaceId: SpaceId;
  spaceName: string;
  phase: 2 | 3;
  glaze: { id: GlazeId; name: string; version: string; size: number; sha256: string; handler: GlazeHandler };
  manifest: string;
  blobPath: string;
  /**
   * T17 multi-homing: the metal's interfaces that link it to this Space (its membership), with the
   * addresses its last profile registered for each. With two or more the client downloads disjoint
   * byte ranges over each (a socket bound to each local address).
   */
  interfaces: WorkInterface[];
}

export interface WorkInterface {
  name: string;
  mac: string;
  addresses: string[];
}

/** A `tips metal rollback` target the metal has not answered yet: the pull side of the MQTT hint. */
export interface PendingRollback {
  eventId: string;
  spaceId: string;
  glazeId: string;
  requestedAt: string;
}

export const MAX_REPORT_BYTES = 64 * 1024;
export const MAX_TAMPER_CHANGES = 1000;
export const DEFAULT_REAUTH_SECONDS = 120;
