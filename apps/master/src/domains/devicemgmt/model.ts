import type { OwnerId, TipsId } from '@tips/core';
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

/** LwM2M lifetime bounds: the Register's `lt` (seconds), default 86400 (Core §6.2.1). */
export const DEFAULT_LIFETIME = 86_400;
export const MAX_LIFETIME = 2 ** 31 - 1;
/** An endpoint name is the metal's TIPS ID or name. */
export const MAX_ENDPOINT = 128;
