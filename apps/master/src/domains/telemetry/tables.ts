/** Tables of the telemetry domain. */
export interface TelemetrySamplesTable {
  id: string;
  metal_id: string;
  owner_id: string;
  at: string;
  received_at: string;
  /** JSON object of the values. */
  values_json: string;
}

export interface TelemetryHeartbeatsTable {
  metal_id: string;
  owner_id: string;
  at: string;
  received_at: string;
  values_json: string;
}

export interface TelemetryAppTokensTable {
  id: string;
  owner_id: string;
  metal_id: string;
  name: string;
  /** JSON array of scopes. */
  scope: string;
  /** Hex SHA-256 of the secret (256 random bits: a plain hash suffices, as for owner tokens). */
  token_hash: string;
  created_at: string;
  expires_at: string;
}

declare module '../../db/schema.ts' {
  interface Database {
    telemetry_samples: TelemetrySamplesTable;
    telemetry_heartbeats: TelemetryHeartbeatsTable;
    telemetry_app_tokens: TelemetryAppTokensTable;
  }
}
