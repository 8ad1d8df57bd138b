import type { Lwm2mQueuedOut, OwnerId, TipsId } from '@tips/core';
import type { FirmwareJobStatus, FirmwareResult, FirmwareState } from './firmware.ts';
import type { DeclaredObject } from './link-format.ts';

export interface Registration {
  id: string;
  metalId: TipsId;
  ownerId: OwnerId;
  endpoint: string;
  lwm2mVersion: string;
  lifetime: number;
  binding: 'U';
  queueMode: boolean;
  objects: DeclaredObject[];
  registeredAt: string;
  lastUpdate: string;
  /** Epoch ms: last update + lifetime + grace; past it the device is offline. */
  expiresAt: number;
  online: boolean;
}

export interface FirmwareJob {
  id: string;
  ownerId: OwnerId;
  metalId: TipsId;
  glazeId: string;
  packageUri: string;
  status: FirmwareJobStatus;
  state: FirmwareState | null;
  result: FirmwareResult | null;
  message: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface ObservedValue {
  path: string;
  /** What valueToJson made of the value. */
  value: unknown;
  observedAt: string;
}

/**
 * An operation the operator asked for while a queue-mode (UQ) device sleeps: sent, in order, when the
 * device next registers or sends a registration update (Core 1.1 §6.6 queue mode). Durable in the
 * database (0017_lwm2m): whichever master replica the device's update reaches claims each operation
 * (queued → sent in one transaction, so exactly one replica sends it) and records its answer.
 */
export interface QueuedOperation extends Lwm2mQueuedOut {
  metalId: TipsId;
  ownerId: OwnerId;
}

/** LwM2M lifetime bounds: the Register's `lt` (seconds), default 86400 (Core §6.2.1). */
export const DEFAULT_LIFETIME = 86_400;
export const MAX_LIFETIME = 2 ** 31 - 1;
/** An endpoint name is the metal's TIPS ID or name. */
export const MAX_ENDPOINT = 128;
