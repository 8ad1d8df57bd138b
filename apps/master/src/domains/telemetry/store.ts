import type { OwnerId } from '@tips/core';
import type { KeysetWindow } from '../../db/keyset.ts';
import type { AppToken, Heartbeat, TelemetrySample } from './model.ts';

/** Storage port of the telemetry domain (tables `telemetry_*`). */
export interface TelemetryStore {
  insertSample(s: TelemetrySample): Promise<void>;
  /** Oldest first by (receivedAt, id), received strictly after `since` when given. */
  listSamples(metalId: string, since: string | undefined, window?: KeysetWindow): Promise<TelemetrySample[]>;
  deleteSamplesBefore(receivedAt: string): Promise<number>;
  putHeartbeat(h: Heartbeat): Promise<void>;
  findHeartbeat(metalId: string): Promise<Heartbeat | undefined>;
  insertAppToken(t: AppToken, tokenHash: string): Promise<void>;
  findAppTokenByHash(tokenHash: string): Promise<AppToken | undefined>;
  /** Oldest first by (createdAt, id). */
  listAppTokens(ownerId: OwnerId, window?: KeysetWindow): Promise<AppToken[]>;
  deleteAppToken(ownerId: OwnerId, id: string): Promise<boolean>;
}
