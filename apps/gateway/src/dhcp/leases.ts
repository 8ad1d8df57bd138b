// Address pool and leases (RFC 2131 §4.3). Deterministic: a known MAC gets its address back, a new
// one gets the lowest never-used address, then the one that expired longest ago.
import { fdatasync, openSync } from 'node:fs';
import type { Db } from '../store/db.ts';
import type { Ipv4 } from './codec.ts';

export type LeaseState = 'offered' | 'bound' | 'released' | 'declined';

export interface Lease {
  ip: Ipv4;
  /** null for an address a client declined (in use by someone we do not know). */
  mac: string | null;
  state: LeaseState;
  /** Unix ms. */
  expiresAt: number;
  hostname: string | null;
  updatedAt: number;
}

export interface LeaseStore {
  get(ip: Ipv4): Lease | undefined;
  byMac(mac: string): Lease | undefined;
  all(): Lease[];
  /** Writes the lease and removes any other non-declined lease of the same MAC, atomically. */
  put(lease: Lease): void;
  /**
   * Runs `fn` as one transaction: every `put` inside is durable when this returns, with one commit
   * (one fsync) for all of them — the DHCP server's group commit. If `fn` throws, none is written.
   * With `durable`, the commit returns at once and the fsync runs off the event loop; `durable` is
   * called when everything `fn` wrote is on disk (or with the error that prevented it).
   */
  atomically<T>(fn: () => T, durable?: (err: Error | null) => void): T;
}

export function ipToNumber(ip: Ipv4): number {
  const p = ip.split('.').map(Number);
  return ((p[0]! << 24) >>> 0) + (p[1]! << 16) + (p[2]! << 8) + p[3]!;
}

export function numberToIp(n: number): Ipv4 {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

export interface PoolConfig {
  first: Ipv4;
  last: Ipv4;
  /** Addresses inside the range never handed out (the gateway's own, for instance). */
  exclude?: Ipv4[];
  leaseTimeSec: number;
  /** How long an OFFER reserves its address. */
  offerHoldSec?: number;
  /** How long a DECLINEd address stays out of the pool. */
  declineHoldSec?: number;
}

export class PoolError extends Error {
  constructor(
    readonly code: 'bad_pool',
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/** Parses `10.77.0.100-10.77.0.200`. */
export function parsePoolRange(s: string): { first: Ipv4; last: Ipv4 } {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})-(\d{1,3}(?:\.\d{1,3}){3})$/.exec(s);
  if (!m || [m[1]!, m[2]!].some((ip) => ip.split('.').some((o) => Number(o) > 255))) {
    throw new PoolError('bad_pool', 'pool', `pool must look like 10.77.0.100-10.77.0.200, got "${s}"`);
  }
  if (ipToNumber(m[1]!) > ipToNumber(m[2]!)) throw new PoolError('bad_pool', 'pool', 'pool start is after pool end');
  return { first: m[1]!, last: m[2]! };
}

export class LeasePool {
  private readonly first: number;
  private readonly last: number;
  private readonly exclude: Set<number>;

  constructor(
    private readonly cfg: PoolConfig,
    private readonly store: LeaseStore,
    private readonly now: () => number,
  ) {
    this.first = ipToNumber(cfg.first);
    this.last = ipToNumber(cfg.last);
    if (this.first > this.last) throw new PoolError('bad_pool', 'pool', 'pool start is after pool end');
    if (this.last - this.first > 65535) throw new PoolError('bad_pool', 'pool', 'pool may hold at most 65536 addresses');
    this.exclude = new Set((cfg.exclude ?? []).map(ipToNumber));
  }

  get leaseTimeSec(): number {
    return this.cfg.leaseTimeSec;
  }

  inPool(ip: Ipv4): boolean {
    const n = ipToNumber(ip);
    return n >= this.first && n <= this.last && !this.exclude.has(n);
  }

  /** Runs `fn` with every lease write inside committed together, durable on return (group commit). */
  atomically<T>(fn: () => T, durable?: (err: Error | null) => void): T {
    return this.store.atomically(fn, durable);
  }

  leaseOf(mac: string): Lease | undefined {
    return this.store.byMac(mac);
  }

  /** The MAC holding a bound, unexpired lease of `ip`, if any (the boot services' attestation). */
  holderOf(ip: Ipv4): string | undefined {
    const l = this.store.get(ip);
    return l && l.state === 'bound' && l.mac !== null && l.expiresAt > this.now() ? l.mac : undefined;
  }

  private isFreeFor(lease: Lease | undefined, mac: string, now: number): boolean {
    if (!lease) return true;
    if (lease.mac === mac && lease.state !== 'declined') return true;
    return lease.expiresAt <= now;
  }

  /** Chooses the address for a DISCOVER; reserves it for offerHoldSec. Undefined when the pool is exhausted. */
  offer(mac: string, requested: Ipv4 | undefined, hostname: string | null): Lease | undefined {
    const now = this.now();
    let ip: Ipv4 | undefined;
    const own = this.store.byMac(mac);
    if (own && own.state !== 'declined' && this.inPool(own.ip)) ip = own.ip;
    else if (requested && this.inPool(requested) && this.isFreeFor(this.store.get(requested), mac, now)) ip = requested;
    else ip = this.lowestFree(mac, now);
    if (!ip) return undefined;
    const existing = this.store.get(ip);
    // A bound lease stays bound (a rebooting client DISCOVERs again); otherwise hold it as an offer.
    const keepBound = existing?.mac === mac && existing.state === 'bound' && existing.expiresAt > now;
    const lease: Lease = {
      ip,
      mac,
      state: keepBound ? 'bound' : 'offered',
      expiresAt: keepBound ? existing.expiresAt : now + (this.cfg.offerHoldSec ?? 30) * 1000,
      hostname: hostname ?? existing?.hostname ?? null,
      updatedAt: now,
    };
    this.store.put(lease);
    return lease;
  }

  private lowestFree(mac: string, now: number): Ipv4 | undefined {
    const used = new Map(this.store.all().map((l) => [ipToNumber(l.ip), l]));
    let reusable: Lease | undefined;
    for (let n = this.first; n <= this.last; n++) {
      if (this.exclude.has(n)) continue;
      const l = used.get(n);
      if (!l) return numberToIp(n);
      if (this.isFreeFor(l, mac, now) && (!reusable || l.expiresAt < reusable.expiresAt)) reusable = l;
    }
    return reusable?.ip;
  }

  /** REQUEST for `ip` (SELECTING or INIT-REBOOT, or RENEWING with ciaddr): binds when the address is this MAC's. */
  bind(mac: string, ip: Ipv4, hostname: string | null): Lease | undefined {
    const now = this.now();
    if (!this.inPool(ip)) return undefined;
    const existing = this.store.get(ip);
    if (!existing || existing.mac !== mac || existing.state === 'declined') return undefined;
    // An expired lease of the same MAC may be revived as long as nobody else took the address.
    const lease: Lease = {
      ip,
      mac,
      state: 'bound',
      expiresAt: now + this.cfg.leaseTimeSec * 1000,
      hostname: hostname ?? existing.hostname,
      updatedAt: now,
    };
    this.store.put(lease);
    return lease;
  }

  /** DHCPRELEASE: the address goes back to the pool but stays associated with the MAC for next time. */
  release(mac: string, ip: Ipv4): boolean {
    const existing = this.store.get(ip);
    if (!existing || existing.mac !== mac || existing.state === 'declined') return false;
    const now = this.now();
    this.store.put({ ...existing, state: 'released', expiresAt: now, updatedAt: now });
    return true;
  }

  /** DHCPDECLINE: someone else answers ARP for this address; keep it out of the pool for a while. */
  decline(mac: string, ip: Ipv4): boolean {
    if (!this.inPool(ip)) return false;
    const existing = this.store.get(ip);
    if (existing && existing.mac !== mac) return false;
    const now = this.now();
    this.store.put({ ip, mac: null, state: 'declined', expiresAt: now + (this.cfg.declineHoldSec ?? 3600) * 1000, hostname: null, updatedAt: now });
    return true;
  }

  /** Addresses currently bound (unexpired). */
  bound(): Lease[] {
    const now = this.now();
    return this.store.all().filter((l) => l.state === 'bound' && l.expiresAt > now);
  }
}

interface LeaseRow {
  ip: string;
  mac: string | null;
  state: LeaseState;
  expires_at: number;
  hostname: string | null;
  updated_at: number;
}

function fromRow(r: LeaseRow): Lease {
  return { ip: r.ip, mac: r.mac, state: r.state, expiresAt: r.expires_at, hostname: r.hostname, updatedAt: r.updated_at };
}

/** Leases in the gateway's SQLite file. */
export class SqliteLeaseStore implements LeaseStore {
  private readonly getStmt;
  private readonly byMacStmt;
  private readonly allStmt;
  private readonly upsertStmt;
  private readonly dropOthersStmt;
  private readonly putTx;
  private walFd: number | undefined;

  constructor(private readonly db: Db) {
    this.getStmt = db.prepare<[string], LeaseRow>('SELECT * FROM leases WHERE ip = ?');
    this.byMacStmt = db.prepare<[string], LeaseRow>(
      "SELECT * FROM leases WHERE mac = ? AND state != 'declined' ORDER BY updated_at DESC LIMIT 1",
    );
    this.allStmt = db.prepare<[], LeaseRow>('SELECT * FROM leases ORDER BY ip_num');
    this.upsertStmt = db.prepare(
      `INSERT INTO leases (ip, ip_num, mac, state, expires_at, hostname, updated_at)
       VALUES (@ip, @ipNum, @mac, @state, @expiresAt, @hostname, @updatedAt)
       ON CONFLICT (ip) DO UPDATE SET mac = excluded.mac, state = excluded.state, expires_at = excluded.expires_at,
         hostname = excluded.hostname, updated_at = excluded.updated_at`,
    );
    this.dropOthersStmt = db.prepare("DELETE FROM leases WHERE mac = ? AND ip != ? AND state != 'declined'");
    this.putTx = db.transaction((l: Lease) => {
      if (l.mac) this.dropOthersStmt.run(l.mac, l.ip);
      this.upsertStmt.run({ ...l, ipNum: ipToNumber(l.ip) });
    });
  }

  get(ip: Ipv4): Lease | undefined {
    const r = this.getStmt.get(ip);
    return r && fromRow(r);
  }
  byMac(mac: string): Lease | undefined {
    const r = this.byMacStmt.get(mac);
    return r && fromRow(r);
  }
  all(): Lease[] {
    return this.allStmt.all().map(fromRow);
  }
  put(lease: Lease): void {
    this.putTx(lease);
  }
  atomically<T>(fn: () => T, durable?: (err: Error | null) => void): T {
    // A put inside is a savepoint of this transaction; the commit (FULL sync) is the only fsync.
    if (!durable || this.db.inTransaction || this.db.memory) return this.tail(this.db.transaction(fn)(), durable);
    // Committed without an fsync (NORMAL: the WAL frames are written, not yet synced), then the WAL
    // file is fdatasync'ed on the thread pool: `durable` is called only once the frames are on disk,
    // while the event loop keeps reading datagrams. A kill -9 loses nothing written (the page cache
    // survives it); a power cut may lose a commit whose `durable` was not called yet — whose
    // replies were therefore never sent.
    this.db.pragma('synchronous = NORMAL');
    let result: T;
    try {
      result = this.db.transaction(fn)();
    } finally {
      this.db.pragma('synchronous = FULL');
    }
    try {
      this.walFd ??= openSync(`${this.db.name}-wal`, 'r');
      fdatasync(this.walFd, (err) => durable(err));
    } catch (err) {
      durable(err as Error);
    }
    return result;
  }

  private tail<T>(result: T, durable?: (err: Error | null) => void): T {
    if (durable) setImmediate(() => durable(null));
    return result;
  }
}
