/** Tables of the sessions domain (console sign-in), joined to the master's `Database` type by module augmentation. */
export interface ConsoleSessionsTable {
  /** SHA-256 (hex) of the session secret the cookie carries; the secret itself is never stored. */
  id_hash: string;
  owner_id: string;
  /** SHA-256 of the API token the session was opened with: revoking that token ends the session. */
  token_hash: string;
  /** The CSRF token every cookie-authenticated write must echo in X-Tips-Csrf. */
  csrf_token: string;
  created_at: string;
  expires_at: string;
}

declare module '../../db/schema.ts' {
  interface Database {
    console_sessions: ConsoleSessionsTable;
  }
}
