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
  /** The lease of the address whose number (`ipToNumber`) is `n`. */
  byNumber(n: number): Lease | undefined;
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
  // Hot (every lease write and pool check): digits read in place, no split.
  let n = 0;
  let part = 0;
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i);
    if (c === 46) {
      n = n * 256 + part;
      part = 0;
    } else part = part * 10 + (c - 48);
  }
  return n * 256 + part;
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
    // Address by address through the store's index (no read of the whole lease table).
    let reusable: Lease | undefined;
    for (let n = this.first; n <= this.last; n++) {
      if (this.exclude.has(n)) continue;
      const l = this.store.byNumber(n);
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

/**
 * Leases in the gateway's SQLite file, written through to an in-memory index (by address, by
 * number, by MAC) that answers every read: the database stays the truth (it is loaded at start,
 * every `put` writes it first), and the index follows each write only once the database took it.
 * Inside `atomically`, each index change is journalled, so a transaction (or a per-message
 * savepoint) that rolls back also rolls the index back. At most one non-declined lease per MAC:
 * `put` removes the MAC's other ones, in the database and in the index alike.
 */
export class SqliteLeaseStore implements LeaseStore {
  private readonly allStmt;
  private readonly upsertStmt;
  private readonly dropOthersStmt;
  private readonly syncNormal;
  private readonly syncFull;
  /** One transaction wrapper, made once (better-sqlite3 builds five functions per `db.transaction`); nested calls are savepoints. */
  private readonly tx: <T>(fn: () => T) => T;
  /** MACs the database held more than one non-declined lease of at load (their next `put` tidies them). */
  private readonly untidy = new Set<string>();
  private walFd: number | undefined;
  /** Whether an fdatasync of the WAL runs now, and who waits for the next one. */
  private syncing = false;
  private syncWaiting: ((err: Error | null) => void)[] = [];
  private readonly byIp = new Map<Ipv4, Lease>();
  private readonly byNum = new Map<number, Lease>();
  private readonly ofMac = new Map<string, Lease>();
  /** Undo steps of the index changes made in the open `atomically`, newest last. */
  private journal: (() => void)[] | undefined;

  constructor(private readonly db: Db) {
    this.allStmt = db.prepare<[], LeaseRow>('SELECT * FROM leases ORDER BY ip_num');
    this.upsertStmt = db.prepare(
      `INSERT INTO leases (ip, ip_num, mac, state, expires_at, hostname, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (ip) DO UPDATE SET mac = excluded.mac, state = excluded.state, expires_at = excluded.expires_at,
         hostname = excluded.hostname, updated_at = excluded.updated_at`,
    );
    this.dropOthersStmt = db.prepare("DELETE FROM leases WHERE mac = ? AND ip != ? AND state != 'declined'");
    this.syncNormal = db.prepare('PRAGMA synchronous = NORMAL');
    this.syncFull = db.prepare('PRAGMA synchronous = FULL');
    const tx = db.transaction((fn: () => unknown) => fn());
    this.tx = <T>(fn: () => T) => tx(fn) as T;
    for (const r of this.allStmt.all()) {
      const l = fromRow(r);
      this.byIp.set(l.ip, l);
      this.byNum.set(ipToNumber(l.ip), l);
      // As the old `byMac` query: the MAC's most recently updated non-declined lease.
      if (l.mac !== null && l.state !== 'declined') {
        const cur = this.ofMac.get(l.mac);
        if (cur) this.untidy.add(l.mac);
        if (!cur || cur.updatedAt <= l.updatedAt) this.ofMac.set(l.mac, l);
      }
    }
  }

  get(ip: Ipv4): Lease | undefined {
    return this.byIp.get(ip);
  }
  byMac(mac: string): Lease | undefined {
    return this.ofMac.get(mac);
  }
  /** The lease of address number `n` (the pool's scan for a free address). */
  byNumber(n: number): Lease | undefined {
    return this.byNum.get(n);
  }
  all(): Lease[] {
    return [...this.byNum.entries()].sort((a, b) => a[0] - b[0]).map((e) => e[1]);
  }
  put(input: Lease): void {
    // The index keeps its own frozen copy: a caller changing its object changes nothing stored.
    const l: Lease = Object.freeze({ ip: input.ip, mac: input.mac, state: input.state, expiresAt: input.expiresAt, hostname: input.hostname, updatedAt: input.updatedAt });
    const num = ipToNumber(l.ip);
    // The MAC's other lease, which the database must lose: the index knows whether there is one.
    const other = l.mac ? this.ofMac.get(l.mac) : undefined;
    const drop = l.mac !== null && ((other !== undefined && other.ip !== l.ip) || this.untidy.has(l.mac));
    const write = () => {
      if (drop) this.dropOthersStmt.run(l.mac, l.ip);
      this.upsertStmt.run(l.ip, num, l.mac, l.state, l.expiresAt, l.hostname, l.updatedAt);
    };
    // Inside `atomically` a failure rolls back the caller's savepoint (and the journal): no savepoint of its own.
    if (this.journal && this.db.inTransaction) write();
    else this.tx(write);
    if (drop) this.untidy.delete(l.mac!);
    // The database took it: the index follows, each step journalled.
    if (other && other.ip !== l.ip) this.setIp(other.ip, ipToNumber(other.ip), undefined);
    this.setIp(l.ip, num, l);
  }

  /** Sets (or deletes) the lease of one address, keeping the MAC index in step; journalled. */
  private setIp(ip: Ipv4, num: number, l: Lease | undefined): void {
    const prev = this.byIp.get(ip);
    const prevMac = prev?.mac ?? null;
    const newMac = l?.mac ?? null;
    // What the undo restores: this address's lease and the MAC entries this change may touch.
    const prevOfPrevMac = prevMac === null ? undefined : this.ofMac.get(prevMac);
    const prevOfNewMac = newMac === null ? undefined : this.ofMac.get(newMac);
    if (prevMac !== null && prevOfPrevMac === prev) this.ofMac.delete(prevMac);
    if (l) {
      this.byIp.set(ip, l);
      this.byNum.set(num, l);
      if (newMac !== null && l.state !== 'declined') this.ofMac.set(newMac, l);
    } else {
      this.byIp.delete(ip);
      this.byNum.delete(num);
    }
    if (!this.journal) return;
    this.journal.push(() => {
      if (prev) {
        this.byIp.set(ip, prev);
        this.byNum.set(num, prev);
      } else {
        this.byIp.delete(ip);
        this.byNum.delete(num);
      }
      this.restoreMac(newMac, prevOfNewMac);
      this.restoreMac(prevMac, prevOfPrevMac);
    });
  }

  private restoreMac(mac: string | null, lease: Lease | undefined): void {
    if (mac === null) return;
    if (lease) this.ofMac.set(mac, lease);
    else this.ofMac.delete(mac);
  }

  atomically<T>(fn: () => T, durable?: (err: Error | null) => void): T {
    const outer = this.journal === undefined;
    this.journal ??= [];
    const journal = this.journal;
    const mark = journal.length;
    try {
      return this.run(fn, durable);
    } catch (err) {
      // Rolled back in the database: the index too, newest change first.
      for (let i = journal.length - 1; i >= mark; i--) journal[i]!();
      journal.length = mark;
      throw err;
    } finally {
      if (outer) this.journal = undefined;
    }
  }

  private run<T>(fn: () => T, durable?: (err: Error | null) => void): T {
    // A put inside is a savepoint of this transaction; the commit (FULL sync) is the only fsync.
    if (!durable || this.db.inTransaction || this.db.memory) return this.tail(this.tx(fn), durable);
    // Committed without an fsync (NORMAL: the WAL frames are written, not yet synced), then the WAL
    // file is fdatasync'ed on the thread pool: `durable` is called only once the frames are on disk,
    // while the event loop keeps reading datagrams. A kill -9 loses nothing written (the page cache
    // survives it); a power cut may lose a commit whose `durable` was not called yet — whose
    // replies were therefore never sent.
    this.syncNormal.run();
    let result: T;
    try {
      result = this.tx(fn);
    } finally {
      this.syncFull.run();
    }
    this.afterSync(durable);
    return result;
  }

  /**
   * Calls `durable` after an fdatasync of the WAL that started after this commit. One fdatasync at
   * a time: the commits made while one runs all wait for the next, which covers every one of them
   * (a group commit of group commits — under load a burst pays one fsync, not one per turn).
   */
  private afterSync(durable: (err: Error | null) => void): void {
    this.syncWaiting.push(durable);
    if (!this.syncing) this.startSync();
  }

  private startSync(): void {
    const batch = this.syncWaiting;
    this.syncWaiting = [];
    this.syncing = true;
    const done = (err: Error | null) => {
      this.syncing = false;
      for (const d of batch) d(err);
      if (this.syncWaiting.length > 0) this.startSync();
    };
    try {
      this.walFd ??= openSync(`${this.db.name}-wal`, 'r');
      fdatasync(this.walFd, done);
    } catch (err) {
      done(err as Error);
    }
  }

  private tail<T>(result: T, durable?: (err: Error | null) => void): T {
    if (durable) setImmediate(() => durable(null));
    return result;
  }
}
