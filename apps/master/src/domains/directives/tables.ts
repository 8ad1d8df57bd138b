/** Table of the directives domain (0011_lifecycle), joined to `Database` by module augmentation. */
export interface MetalDirectivesTable {
  id: string;
  owner_id: string;
  kind: string;
  /** '' for an owner-wide directive (a trust-list update). */
  metal_id: string;
  key_id: string;
  sequence_number: string;
  /** The SUIT envelope, base64. */
  envelope: string;
  created_at: string;
}

declare module '../../db/schema.ts' {
  interface Database {
    metal_directives: MetalDirectivesTable;
  }
}
