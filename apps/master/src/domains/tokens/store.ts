/** Storage port of the tokens domain (table `token_challenges`). */
export interface TokenStore {
  insertChallenge(c: { nonce: string; ownerId: string; expiresAt: string; createdAt: string }): Promise<void>;
  /** Deletes the challenge if it exists and is unexpired at `now`: true exactly once per nonce. */
  consumeChallenge(nonce: string, now: string): Promise<boolean>;
}
