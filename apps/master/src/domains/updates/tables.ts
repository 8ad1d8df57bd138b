/**
 * Tables of the updates domain (the Update Manager), joined to the master's `Database` type by
 * module augmentation so the shared schema file stays untouched by this domain.
 */
export interface MetalProfilesTable {
  metal_id: string;
  owner_id: string;
  vendor_id: string | null;
  class_id: string | null;
  /** JSON: [{ id, name, version, sequence }] as the metal reported it. */
  glazes: string;
  /** JSON: [{ name, mac, addresses }]. */
  interfaces: string;
  /** JSON: ["https", "mqtt"]. */
  protocols: string;
  updated_at: string;
}

/** The installation state of one metal in one Space (Phase 2 or 3): what runs, and the last report. */
export interface MetalInstallationsTable {
  metal_id: string;
  space_id: string;
  owner_id: string;
  /** The Glaze the metal last reported installed in this Space (null: none yet). */
  installed_glaze_id: string | null;
  installed_sequence: string | null;
  installed_at: string | null;
  last_glaze_id: string;
  /** installed | failed | rolled_back */
  last_result: string;
  last_reason: string | null;
  updated_at: string;
}

/** Every report a metal sent (history), with the signed bytes. */
export interface MetalReportsTable {
  id: string;
  owner_id: string;
  metal_id: string;
  space_id: string;
  glaze_id: string;
  result: string;
  reason: string | null;
  sequence: string;
  /** The time the metal claims (ISO). */
  at: string;
  /** The COSE_Sign1 bytes as received, base64. */
  cose: string;
  created_at: string;
}

/** Events the owner sees: tamper reports, refused metal-API authentications, rollback requests. */
export interface MetalEventsTable {
  id: string;
  owner_id: string;
  metal_id: string;
  /** tamper | auth_failure | rollback_requested | rolled_back */
  kind: string;
  code: string;
  /** JSON detail: the changes of a tamper report, the Glazes of a rollback request. */
  detail: string;
  created_at: string;
}

declare module '../../db/schema.ts' {
  interface Database {
    metal_profiles: MetalProfilesTable;
    metal_installations: MetalInstallationsTable;
    metal_reports: MetalReportsTable;
    metal_events: MetalEventsTable;
  }
  interface GlazesTable {
    /** Install handler on the metal (0008): archive | rootfs-ab | systemd-service | script. */
    handler: string;
    /** The operator's version label (0008), e.g. "1.4"; `name@version` references it. */
    version: string | null;
  }
}
