/** Tables of the provisioning domain, joined to the master's `Database` type by module augmentation. */
export interface ProvisioningJobsTable {
  id: string;
  owner_id: string;
  metal_id: string;
  /** = metal_id while the job is open, null once finished: a unique index keeps one open job per metal. */
  open_metal_id: string | null;
  interface_name: string;
  mac: string;
  space_id: string;
  engine: string;
  state: string;
  reason: string | null;
  detail: string | null;
  glaze_id: string | null;
  glaze_name: string | null;
  glaze_size: number | null;
  glaze_sha256: string | null;
  /** base64 of the pinned SUIT envelope. */
  glaze_manifest: string | null;
  glaze_sequence: number | null;
  token_hash: string | null;
  installer_key: string | null;
  enrollment_secret_id: string | null;
  /** JSON array of { state, at, reason }. */
  transitions: string;
  /** base64 of the COSE_Sign1 report, its decoded payload as JSON, and when it came. */
  report_cose: string | null;
  report_json: string | null;
  report_at: string | null;
  created_at: string;
  updated_at: string;
}

declare module '../../db/schema.ts' {
  interface Database {
    provisioning_jobs: ProvisioningJobsTable;
  }
  interface MetalsTable {
    /** 0007: the metal's Phase 1 engine; null = its default Space's. */
    engine?: string | null;
  }
  interface SpacesTable {
    /** 0007: the engine of the metals this Space provisions in Phase 1; null = builtin. */
    engine?: string | null;
    /** 0012: JSON list of engine rules by metal label ({ match, engine }); null = none. */
    engine_rules?: string | null;
  }
}
