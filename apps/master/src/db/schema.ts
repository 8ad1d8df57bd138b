/**
 * Table types for Kysely. Every domain owns its tables (named with its prefix) and only its own
 * store touches them. Portable column types so the same queries run on SQLite and PostgreSQL:
 * text IDs, ISO-8601 text timestamps, integer booleans (0/1), JSON as text.
 */
export interface OwnersTable {
  id: string;
  name: string;
  is_admin: number;
  created_at: string;
}

export interface ApiTokensTable {
  id: string;
  owner_id: string;
  name: string;
  token_hash: string;
  created_at: string;
  last_used_at: string | null;
}

export interface MetalsTable {
  id: string;
  owner_id: string;
  name: string;
  labels: string;
  created_at: string;
  updated_at: string;
}

export interface MetalInterfacesTable {
  metal_id: string;
  name: string;
  mac: string;
  type: string;
  pxe: number;
  position: number;
}

export interface SpacesTable {
  id: string;
  owner_id: string;
  name: string;
  phase: number;
  glaze_id: string | null;
  created_at: string;
  updated_at: string;
}

export interface SpaceMembersTable {
  space_id: string;
  metal_id: string;
  interface_name: string;
  is_default: number;
}

export interface GlazesTable {
  id: string;
  owner_id: string;
  name: string;
  size: number;
  sha256: string;
  media_type: string;
  blob_key: string;
  created_at: string;
}

export interface GlazeSpacesTable {
  glaze_id: string;
  space_id: string;
}

export interface Database {
  owners: OwnersTable;
  api_tokens: ApiTokensTable;
  metals: MetalsTable;
  metal_interfaces: MetalInterfacesTable;
  spaces: SpacesTable;
  space_members: SpaceMembersTable;
  glazes: GlazesTable;
  glaze_spaces: GlazeSpacesTable;
}
