/**
 * S10: the update servers a metal may ask — master URLs (replicas) and gateway caches that speak the
 * metal API — tried in the configured order. A server that cannot be reached (connection refused,
 * reset, timeout) passes the request to the next one; when every server failed, the whole list is
 * tried again after an exponential backoff with jitter, a bounded number of rounds. Which server
 * answered is logged whenever it changes. Refusals (4xx, auth) are answers: they never fail over.
 */
import type { Logger } from 'pino';
import { ClientError } from '../errors.ts';

export interface BackoffOptions {
  /** First delay (ms). */
  baseMs: number;
  /** Ceiling of the delay (ms). */
  maxMs: number;
  /** Uniform random in [0, 1): "full jitter" keeps metals that lost the same server from returning in step. */
  random?: () => number;
}

/**
 * The delay before retry number `attempt` (0-based): a random point in [d/2, d] where
 * d = min(maxMs, baseMs · 2^attempt) — exponential growth, half of it jittered.
 */
export function backoffDelay(attempt: number, o: BackoffOptions): number {
  const ceiling = Math.min(o.maxMs, o.baseMs * 2 ** Math.min(Math.max(attempt, 0), 30));
  const r = (o.random ?? Math.random)();
  return Math.round(ceiling / 2 + (ceiling / 2) * r);
}

/** The effective list: `--server` flags, then config.json's `servers`, then `masterUrl`; duplicates (trailing slashes aside) removed. */
export function serverOrder(flags: readonly string[], configured: readonly string[], masterUrl: string): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const raw of [...flags, ...configured, masterUrl]) {
    const u = raw.replace(/\/+$/, '');
    if (seen.has(u)) continue;
    seen.add(u);
    out.push(u);
  }
  return out;
}

/** A failure that another server might not have: the request never got an answer. */
export const isUnreachable = (e: unknown): boolean => e instanceof ClientError && e.code === 'master_unreachable';

export interface ServerListOptions extends Partial<BackoffOptions> {
  /** Full passes over the list before giving up (the run loop tries again at its next cycle). Default 3. */
  rounds?: number;
  /** A server that answered is kept (no dead server is asked first on every request) until this long has passed; then the first is tried again. Default 10 min. */
  stickyMs?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  log?: Logger;
}

export class ServerList {
  private index = 0;
  private answered: string | undefined;
  private answeredAt = 0;
  private readonly backoff: BackoffOptions;
  private readonly rounds: number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(
    readonly urls: readonly string[],
    private readonly o: ServerListOptions = {},
  ) {
    if (urls.length === 0) throw new ClientError('config_invalid', 'no update server: give masterUrl, servers or --server');
    this.backoff = { baseMs: o.baseMs ?? 1_000, maxMs: o.maxMs ?? 30_000, random: o.random };
    this.rounds = Math.max(1, o.rounds ?? 3);
    this.sleep = o.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  /** The server the next request goes to: the one that answered last, else the first. */
  current(): string {
    return this.urls[this.index]!;
  }

  /**
   * Runs `fn` against each server in order until one answers, starting with the one that answered
   * last (the first again once `stickyMs` passed: a preferred server that came back is used again).
   * Unreachable everywhere: backoff, next round; after the last round the last error is thrown.
   */
  async attempt<T>(what: string, fn: (base: string) => Promise<T>): Promise<T> {
    let last: unknown;
    const now = (this.o.now ?? Date.now)();
    const start = this.answered !== undefined && now - this.answeredAt < (this.o.stickyMs ?? 600_000) ? this.index : 0;
    for (let round = 0; round < this.rounds; round++) {
      if (round > 0) {
        const ms = backoffDelay(round - 1, this.backoff);
        this.o.log?.warn({ event: 'servers_unreachable', what, round, retryInMs: ms, servers: this.urls }, `no update server answered ${what}; trying the list again in ${ms} ms`);
        await this.sleep(ms);
      }
      for (let k = 0; k < this.urls.length; k++) {
        const i = (round === 0 ? start + k : k) % this.urls.length;
        const base = this.urls[i]!;
        this.index = i;
        try {
          const out = await fn(base);
          this.chose(base, what, last !== undefined);
          return out;
        } catch (e) {
          if (!isUnreachable(e)) {
            // A refusal is an answer from this server.
            this.chose(base, what, last !== undefined);
            throw e;
          }
          last = e;
          this.o.log?.warn({ event: 'server_unreachable', server: base, what, message: (e as Error).message }, `update server ${base} unreachable`);
        }
      }
    }
    this.index = 0;
    throw last;
  }

  /** `failedOver`: another server was tried first in this attempt — the stickiness starts again. */
  private chose(base: string, what: string, failedOver: boolean): void {
    const changed = this.answered !== base;
    if (changed || failedOver) this.answeredAt = (this.o.now ?? Date.now)();
    if (!changed) return;
    this.o.log?.info({ event: 'server_selected', server: base, previous: this.answered ?? null, what }, `update server ${base} answered`);
    this.answered = base;
  }
}
