/** Tables of the bootstrap domain (issue 11, Z4): bootstrapping profiles and onboarding records. */
export interface BootstrapProfilesTable {
  id: string;
  owner_id: string;
  name: string;
  priority: number;
  /** JSON: ProfileMatch. */
  match: string;
  phase1_glaze: string | null;
  /** JSON array of Space IDs. */
  spaces: string;
  /** JSON array: http, coap. */
  protocols: string;
  /** JSON: AgentSettings. */
  agent: string;
  attestation: string;
  /** JSON array of PCR indices. */
  pcrs: string;
  pcr_digest: string | null;
  /** JSON: Lwm2mSettings, or null (0016_lwm2m). */
  lwm2m: string | null;
  created_at: string;
}

export interface OnboardingsTable {
  id: string;
  owner_id: string;
  guid: string;
  status: string;
  reason: string | null;
  profile_id: string | null;
  verifier: string | null;
  metal_id: string | null;
  secret_id: string | null;
  /** JSON: DeviceFacts as the device sent them at hello (the proof signs their digest). */
  facts: string | null;
  /** JSON array of { status, at, reason }. */
  events: string;
  created_at: string;
  updated_at: string;
}

declare module '../../db/schema.ts' {
  interface Database {
    bootstrap_profiles: BootstrapProfilesTable;
    onboardings: OnboardingsTable;
  }
}
