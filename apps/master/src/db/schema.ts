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
  /** 0010: the interface list as JSON in position order, a read copy of `metal_interfaces` (one query a page). */
  interfaces: string;
  created_at: string;
  updated_at: string;
  /** 0015: the metal's list item as JSON (`storedMetalJson`), written with the row; SQLite joins a page of them. */
  list_item?: string | null;
}

export interface MetalInterfacesTable {
  metal_id: string;
  /** The metal's owner (0005): a MAC is unique per owner. */
  owner_id: string;
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

export interface GatewaysTable {
  id: string;
  owner_id: string;
  name: string;
  enrollment_token_hash: string | null;
  enrollment_expires_at: string | null;
  public_key: string | null;
  enrolled_name: string | null;
  enrolled_at: string | null;
  created_at: string;
  last_seen_at: string | null;
}

export interface GatewayNoncesTable {
  at: number;
  gateway_id: string;
  nonce: string;
}

export interface GatewayTablesTable {
  gateway_id: string;
  rows: string;
  row_count: number;
  updated_at: string;
}

export interface GatewayCommandsTable {
  id: string;
  gateway_id: string;
  seq: number;
  body: string;
  created_at: string;
}

export interface DiscoveryRegistrationsTable {
  id: string;
  at: string;
  owner_id: string;
  gateway_id: string;
  mac: string;
  ip: string;
  gateway_interface: string;
  interface_type: string;
  pxe: number;
  hostname: string | null;
  decision: string;
  reason: string | null;
  tips_id: string | null;
  /** The gateway's key for this registration, unique per gateway (0016); null before, or when none was sent. */
  idempotency_key: string | null;
}

export interface DiscoveryBlocksTable {
  metal_id: string;
  owner_id: string;
  reason: string | null;
  blocked_at: string;
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
  gateways: GatewaysTable;
  gateway_nonces: GatewayNoncesTable;
  gateway_tables: GatewayTablesTable;
  gateway_commands: GatewayCommandsTable;
  discovery_registrations: DiscoveryRegistrationsTable;
  discovery_blocks: DiscoveryBlocksTable;
}
