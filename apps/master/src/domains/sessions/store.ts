import type { ConsoleSession } from './model.ts';

/** Storage port of the sessions domain (table `console_sessions`). */
export interface SessionStore {
  insert(s: ConsoleSession): Promise<void>;
  /** The session with this hash if it has not expired at `now`. */
  find(idHash: string, now: string): Promise<ConsoleSession | undefined>;
  delete(idHash: string): Promise<boolean>;
  /** Removes sessions expired at `now`; returns how many. */
  sweep(now: string): Promise<number>;
}
