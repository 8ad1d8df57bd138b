import type { OwnerId } from '@tips/core';
import type { DeviceFacts } from '@tips/onboarding';

/** Verifiers a profile may ask for (the attestation port's names). */
export const ATTESTATIONS = ['software-key', 'tpm2'] as const;
export type Attestation = (typeof ATTESTATIONS)[number];
export const PROTOCOLS = ['http', 'coap'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

/** What a device must be for a profile to apply; an absent field matches anything. */
export interface ProfileMatch {
  /** device-info `vendor=` of the voucher (signed by the manufacturer). */
  vendor?: string;
  /** device-info `class=`. */
  class?: string;
  /** Reported by the device (`uname -m` style: x86_64, aarch64, …). */
  arch?: string;
  minRamMb?: number;
  minStorageMb?: number;
  /** device-info `purpose=`, else the purpose label the device reports. */
  purpose?: string;
}

/** The agent configuration the device receives (written into its config.json). */
export interface AgentSettings {
  vendorId?: string | null;
  classId?: string | null;
  managedPaths?: string[];
  pollIntervalSeconds?: number;
  push?: boolean;
}

export const LWM2M_BINDINGS = ['U', 'UQ'] as const;
/**
 * The LwM2M part of a profile (contract K, Z5): what the LwM2M bootstrap server writes into the
 * device's Security (0) and Server (1) objects. `serverUri` absent: this master's CoAP endpoint.
 */
export interface Lwm2mSettings {
  serverUri?: string;
  /** Registration lifetime in seconds (/1/0/1). */
  lifetime: number;
  /** U, or UQ: queue mode (the device sleeps between updates). */
  binding: (typeof LWM2M_BINDINGS)[number];
  defaultMinPeriod?: number;
  defaultMaxPeriod?: number;
}

/** A bootstrapping profile (Z4): which devices, and what they become. */
export interface BootstrapProfile {
  id: string;
  ownerId: OwnerId;
  name: string;
  /** Lower first; ties by creation time. */
  priority: number;
  match: ProfileMatch;
  /** The Glaze Phase 1 installs, or null: the device already has its OS. */
  phase1Glaze: string | null;
  /** Space IDs; the Phase 1 one (at most one) becomes the metal's default Space. */
  spaces: string[];
  protocols: Protocol[];
  agent: AgentSettings;
  attestation: Attestation;
  /** tpm2: the PCR indices the quote must cover, and their expected digest (hex SHA-256) or null. */
  pcrs: number[];
  pcrDigest: string | null;
  /** LwM2M bootstrap values (devices that speak LwM2M); absent: the master's defaults. */
  lwm2m?: Lwm2mSettings;
  createdAt: string;
}

export type { DeviceFacts, ReportedInterface } from '@tips/onboarding';

export const ONBOARDING_STATES = ['waiting', 'attested', 'registered', 'enrolled', 'failed'] as const;
export type OnboardingState = (typeof ONBOARDING_STATES)[number];

export interface OnboardingEvent {
  status: OnboardingState;
  at: string;
  reason: string | null;
}

/** One device's onboarding as its owner sees it (one per owner and GUID; attempts append events). */
export interface OnboardingRecord {
  id: string;
  ownerId: OwnerId;
  guid: string;
  status: OnboardingState;
  /** Why it failed (the verifier's or the flow's reason), else null. */
  reason: string | null;
  profileId: string | null;
  verifier: Attestation | null;
  metalId: string | null;
  /** The enrollment secret issued (its ID; the value went to the device only). */
  secretId: string | null;
  facts: DeviceFacts | null;
  events: OnboardingEvent[];
  createdAt: string;
  updatedAt: string;
}

/** Events kept per record: the newest win (a device that retries forever does not grow it forever). */
export const MAX_EVENTS = 50;
