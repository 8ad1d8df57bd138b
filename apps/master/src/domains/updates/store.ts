import type { KeysetWindow } from '../../db/keyset.ts';
import type { GlazeId, OwnerId, TipsId } from '@tips/core';
import type { InstallReport, Installation, MetalEvent, MetalEventKind, MetalProfile } from './model.ts';

/** Storage port of the updates domain (tables `metal_profiles`, `metal_installations`, `metal_reports`, `metal_events`). */
export interface UpdateStore {
  putProfile(p: MetalProfile): Promise<void>;
  profile(metalId: TipsId): Promise<MetalProfile | undefined>;
  /** Metals of the owner whose profile matches every given criterion. */
  metalsMatching(ownerId: OwnerId, q: { vendorId?: string; classId?: string; glazeId?: GlazeId }): Promise<TipsId[]>;
  /** Appends the report and moves the (metal, Space) state, in one transaction. */
  recordReport(report: InstallReport): Promise<Installation>;
  installations(metalId: TipsId): Promise<Installation[]>;
  /** Newest first. */
  reports(metalId: TipsId, limit: number): Promise<InstallReport[]>;
  addEvent(e: MetalEvent): Promise<void>;
  /** Newest first. */
  events(metalId: TipsId, kind: MetalEventKind | undefined, limit: number): Promise<MetalEvent[]>;
  /** The owner's events of one kind across all metals, newest first (keyset window). */
  ownerEvents(ownerId: OwnerId, kind: MetalEventKind, window: KeysetWindow): Promise<MetalEvent[]>;
  /** Drops everything about a deleted metal. */
  forgetMetal(metalId: TipsId): Promise<void>;
}
