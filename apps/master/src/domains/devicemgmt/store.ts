import type { OwnerId, TipsId } from '@tips/core';
import type { KeysetWindow } from '../../db/keyset.ts';
import type { FirmwareJob, ObservedValue, QueuedOperation, Registration } from './model.ts';

/** Storage port of the devicemgmt domain (tables lwm2m_*). */
export interface DeviceMgmtStore {
  /**
   * Inserts or replaces the metal's one registration (a new Register supersedes the old); says
   * whether the replaced one was in queue mode (its operations may wait: the Register wakes them).
   */
  putRegistration(r: Registration): Promise<{ replacedQueueMode: boolean }>;
  registrationById(id: string): Promise<Registration | undefined>;
  registrationOf(metalId: TipsId): Promise<Registration | undefined>;
  /**
   * The owner's registrations in TIPS ID order (window position: `at` the owner ID, `id` the metal
   * ID): a re-register replaces the row's ID and time, the metal never changes, so pages stay stable.
   */
  listRegistrations(ownerId: OwnerId, window?: KeysetWindow): Promise<Registration[]>;
  /** Update: refreshes lifetime, binding, objects, last update; false when the ID is gone. */
  touch(id: string, patch: Pick<Registration, 'lifetime' | 'binding' | 'queueMode' | 'objects' | 'lastUpdate' | 'expiresAt'>): Promise<boolean>;
  deleteRegistration(id: string): Promise<boolean>;
  /** Marks offline every online registration whose expiry is before `nowMs`; returns them (ID and owner). */
  expire(nowMs: number): Promise<{ id: string; ownerId: OwnerId }[]>;
  counts(): Promise<{ registered: number; online: number }>;
  putJob(j: FirmwareJob): Promise<void>;
  updateJob(id: string, patch: Pick<FirmwareJob, 'status' | 'state' | 'result' | 'message' | 'updatedAt'>): Promise<void>;
  latestJob(metalId: TipsId): Promise<FirmwareJob | undefined>;
  putObserved(metalId: TipsId, values: ObservedValue[]): Promise<void>;
  observed(metalId: TipsId, path: string): Promise<ObservedValue | undefined>;

  // --- queue mode (0017_lwm2m) ---
  /**
   * Queues `op` unless the metal already has `max` open (queued or sent) operations: 'full' then,
   * nothing written; or its registration is gone or no longer in queue mode (an Update switched it to
   * U after the caller looked): 'awake' then, nothing written — the caller sends it at once, since no
   * later flush would. Its createdAt is moved past the metal's newest so the delivery order is strict.
   */
  enqueue(op: QueuedOperation, max: number): Promise<QueuedOperation | 'full' | 'awake'>;
  /**
   * Claims the metal's oldest queued operation for this replica (queued → sent in one transaction):
   * two replicas flushing at once never claim the same one. Undefined when none is left.
   */
  claimQueued(metalId: TipsId, nowIso: string): Promise<QueuedOperation | undefined>;
  /** Records how a sent operation ended; keeps the newest `keepFinished` finished ones of the metal. */
  finishQueued(op: QueuedOperation, keepFinished: number): Promise<void>;
  /** Sent operations claimed before `beforeIso` (their replica died mid-way) become failed with `error`. */
  failStaleSent(metalId: TipsId, beforeIso: string, error: { code: string; message: string }, nowIso: string): Promise<number>;
  /** The metal's open and kept finished operations, oldest first. */
  listQueued(metalId: TipsId): Promise<QueuedOperation[]>;
  queuedOperation(metalId: TipsId, id: string): Promise<QueuedOperation | undefined>;
  forgetQueue(metalId: TipsId): Promise<void>;
}
