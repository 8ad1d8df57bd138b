import { randomBytes } from 'node:crypto';

/** Time comes in through a port so tests can fix it. */
export interface Clock {
  now(): Date;
}
/** Randomness comes in through a port so tests can make IDs deterministic. */
export interface Random {
  bytes(n: number): Uint8Array;
}

export const systemClock: Clock = { now: () => new Date() };
export const systemRandom: Random = { bytes: (n) => new Uint8Array(randomBytes(n)) };
