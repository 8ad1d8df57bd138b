/** Tables of the tokens domain, joined to the master's `Database` type by module augmentation. */
export interface TokenChallengesTable {
  nonce: string;
  owner_id: string;
  expires_at: string;
  created_at: string;
}

declare module '../../db/schema.ts' {
  interface Database {
    token_challenges: TokenChallengesTable;
  }
}
