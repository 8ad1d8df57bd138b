import type { OwnerId } from '@tips/core';

/** A console session: what the `tips_session` cookie opens (its secret is only ever hashed here). */
export interface ConsoleSession {
  idHash: string;
  ownerId: OwnerId;
  tokenHash: string;
  csrfToken: string;
  createdAt: string;
  expiresAt: string;
}

/** The HttpOnly cookie carrying the session secret. */
export const SESSION_COOKIE = 'tips_session';
/** The cookie the page reads (not HttpOnly) and echoes in the CSRF header: a double submit. */
export const CSRF_COOKIE = 'tips_csrf';
export const CSRF_HEADER = 'x-tips-csrf';
/** Default lifetime of a session: a working day. */
export const DEFAULT_SESSION_TTL_SECONDS = 12 * 3600;
