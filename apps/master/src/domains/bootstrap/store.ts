import type { OwnerId } from '@tips/core';
import type { KeysetWindow } from '../../db/keyset.ts';
import type { BootstrapProfile, OnboardingRecord, OnboardingState } from './model.ts';

/** Storage port of the bootstrap domain (tables `bootstrap_profiles`, `onboardings`). */
export interface BootstrapStore {
  insertProfile(p: BootstrapProfile): Promise<void>;
  /** Replaces the profile of that ID (its owner, ID and creation time never change). */
  updateProfile(p: BootstrapProfile): Promise<void>;
  /** Oldest first by (createdAt, id). */
  listProfiles(ownerId: OwnerId, window?: KeysetWindow): Promise<BootstrapProfile[]>;
  findProfile(ownerId: OwnerId, idOrName: string): Promise<BootstrapProfile | undefined>;
  findProfileById(id: string): Promise<BootstrapProfile | undefined>;
  /** The onboarding record that made this metal (the latest one if several). */
  findRecordByMetal(ownerId: OwnerId, metalId: string): Promise<OnboardingRecord | undefined>;
  findRecord(ownerId: OwnerId, guid: string): Promise<OnboardingRecord | undefined>;
  findRecordById(ownerId: OwnerId, id: string): Promise<OnboardingRecord | undefined>;
  findRecordBySecret(secretId: string): Promise<OnboardingRecord | undefined>;
  /** Inserts or replaces the record of (owner, guid). */
  putRecord(r: OnboardingRecord): Promise<void>;
  /** Oldest first by (createdAt, id), optionally one status. */
  listRecords(ownerId: OwnerId, status: OnboardingState | undefined, window?: KeysetWindow): Promise<OnboardingRecord[]>;
}
