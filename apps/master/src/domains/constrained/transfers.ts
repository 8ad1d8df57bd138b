/**
 * Block2 transfers of Glaze payloads in progress (issue 12, block-wise speed): a device fetching a
 * 1 MiB payload in 1 KiB blocks sends 1024 requests on one DTLS session. Re-authenticating the metal,
 * re-authorizing the Glaze and reopening the blob for each of them cost ≈ 1.2 ms of CPU a block; this
 * cache keeps, per (DTLS session, Glaze), the principal that was checked, the Glaze, and a read-ahead
 * window of the payload, so a block in the middle of a transfer is a slice of memory.
 *
 * What still cuts a transfer:
 * - `revoke()`: the access generation moves on every local revocation signal (PSK revoked, metal's
 *   access revoked/retired/blocked/deleted, a Space's Glaze or membership changed); the next block of
 *   every transfer re-authenticates in full and a refused principal answers 4.01/4.03 as before.
 * - `recheckMs`: even without a signal, a transfer re-authenticates at least that often: the bound on
 *   how long another replica's revocation goes unseen while the bus is down (with the bus up it arrives
 *   as a signal: `ConstrainedService.useBus`).
 * - idle expiry and a bound on the number of transfers (least recently used dropped first), so the
 *   memory held is at most `maxTransfers × windowBytes`.
 *
 * A payload of at most `wholePayloadBytes` is read whole, once, into a cache shared by every transfer of
 * the same bytes (keyed by SHA-256: a fleet fetching one firmware reads it once), bounded by
 * `payloadCacheBytes` (least recently used dropped, and with it the windows pointing into it), so the
 * memory held is at most `payloadCacheBytes + maxTransfers × windowBytes`. Authorization is unchanged:
 * every transfer still checks its principal and Glaze before its first block and on every re-check.
 */
import type { Glaze } from '../glazes/model.ts';
import type { MetalPrincipal } from '../enrollment/model.ts';

export interface TransferLimits {
  /** Transfers kept at once (least recently used evicted). */
  maxTransfers: number;
  /** Bytes read ahead from the blob store per transfer. */
  windowBytes: number;
  /** A transfer not asked for a block for this long is dropped. */
  idleMs: number;
  /** A transfer re-authenticates at least this often (cross-replica revocation bound). */
  recheckMs: number;
  /** Payloads up to this size are read whole into the shared cache (0 or absent: never). */
  wholePayloadBytes?: number;
  /** Bytes the shared whole-payload cache may hold. */
  payloadCacheBytes?: number;
}

export const DEFAULT_TRANSFER_LIMITS: TransferLimits = {
  maxTransfers: 256,
  windowBytes: 64 * 1024,
  idleMs: 30_000,
  recheckMs: 1_000,
  wholePayloadBytes: 4 * 1024 * 1024,
  payloadCacheBytes: 32 * 1024 * 1024,
};

interface CachedPayload {
  bytes: Uint8Array;
  usedSeq: number;
}

export interface Transfer {
  metal: MetalPrincipal;
  glaze: Glaze;
  generation: number;
  checkedAt: number;
  usedAt: number;
  /** Order of last use (eviction picks the smallest): no Map reordering per block. */
  usedSeq: number;
  /** The Glaze's ETag (first 16 bytes of its SHA-256), built once per transfer. */
  etag: Uint8Array;
  window: { offset: number; bytes: Uint8Array } | undefined;
}

export type TransferLookup = 'hit' | 'miss' | 'recheck';

export class BlobTransfers {
  private readonly transfers = new Map<string, Transfer>();
  private generation = 0;
  private useSeq = 0;
  /** Whole payloads by SHA-256 (and the reads in flight, so concurrent first blocks read once). */
  private readonly payloads = new Map<string, CachedPayload>();
  private readonly loading = new Map<string, Promise<Uint8Array>>();
  private payloadBytes = 0;

  constructor(
    private readonly now: () => number,
    readonly limits: TransferLimits = DEFAULT_TRANSFER_LIMITS,
  ) {}

  /** A revocation signal: every transfer re-authenticates before its next block. */
  revoke(): void {
    this.generation++;
  }

  get size(): number {
    return this.transfers.size;
  }

  /** Bytes of payload held now: read-ahead windows and the shared whole-payload cache, each buffer once. */
  bytesHeld(): number {
    const seen = new Set<Uint8Array>();
    let n = 0;
    for (const p of this.payloads.values()) {
      seen.add(p.bytes);
      n += p.bytes.length;
    }
    for (const t of this.transfers.values()) {
      const w = t.window?.bytes;
      if (w && !seen.has(w)) n += w.length;
    }
    return n;
  }

  /** The transfer if it may serve a block without re-checking; why not otherwise. */
  lookup(key: string): { transfer: Transfer; result: 'hit' } | { result: 'miss' } | { result: 'recheck'; stale: Transfer } {
    const t = this.transfers.get(key);
    if (!t) return { result: 'miss' };
    const now = this.now();
    if (now - t.usedAt > this.limits.idleMs) {
      this.transfers.delete(key);
      return { result: 'miss' };
    }
    if (t.generation !== this.generation || now - t.checkedAt > this.limits.recheckMs) {
      this.transfers.delete(key);
      return { result: 'recheck', stale: t };
    }
    t.usedAt = now;
    t.usedSeq = ++this.useSeq;
    return { transfer: t, result: 'hit' };
  }

  /** Records a transfer whose principal and Glaze were just checked. */
  start(key: string, metal: MetalPrincipal, glaze: Glaze, previous?: Transfer): Transfer {
    const now = this.now();
    // A re-check of the same Glaze keeps the window already read (same bytes: a Glaze is immutable).
    const window = previous && previous.glaze.id === glaze.id && previous.glaze.sha256 === glaze.sha256 ? previous.window : undefined;
    const etag = previous && previous.glaze.sha256 === glaze.sha256 ? previous.etag : new Uint8Array(Buffer.from(glaze.sha256.slice(0, 16), 'hex'));
    const t: Transfer = { metal, glaze, generation: this.generation, checkedAt: now, usedAt: now, usedSeq: ++this.useSeq, etag, window };
    this.transfers.delete(key);
    this.transfers.set(key, t);
    while (this.transfers.size > this.limits.maxTransfers) {
      // least recently used first (a scan only when full, not a reordering per block)
      let oldest: [string, Transfer] | undefined;
      for (const e of this.transfers) if (!oldest || e[1].usedSeq < oldest[1].usedSeq) oldest = e;
      this.transfers.delete((oldest as [string, Transfer])[0]);
    }
    return t;
  }

  /** The whole payload if the transfer reads it from the shared cache (so a transport may serve blocks from it). */
  wholeOf(t: Transfer): Uint8Array | undefined {
    const w = t.window;
    return w && w.offset === 0 && w.bytes.length === t.glaze.size ? w.bytes : undefined;
  }

  /**
   * Until when the transfer may be served without coming back here: its next re-check (`recheckMs` after
   * the last one), or undefined if a revocation signal came since it was checked.
   */
  offloadDeadline(t: Transfer): number | undefined {
    if (t.generation !== this.generation) return undefined;
    const until = t.checkedAt + this.limits.recheckMs;
    return until > this.now() ? until : undefined;
  }

  /** Drops the transfers of a closed DTLS session (keys start with its peer key). */
  endSession(peerKey: string): void {
    for (const k of this.transfers.keys()) if (k.startsWith(`${peerKey}|`)) this.transfers.delete(k);
  }

  /** Drops idle transfers (called from a timer; `lookup` drops them too). */
  sweep(): void {
    const now = this.now();
    for (const [k, t] of this.transfers) if (now - t.usedAt > this.limits.idleMs) this.transfers.delete(k);
  }

  /**
   * `length` bytes at `offset` of the transfer's payload, from its window; a miss reads the next
   * window (at most `windowBytes`, never past the end) through `fetch(start, endInclusive)`.
   */
  read(t: Transfer, offset: number, length: number, fetch: (start: number, end: number) => Promise<Uint8Array>): Uint8Array | Promise<Uint8Array> {
    const w = t.window;
    // A hit is a slice of the window, returned as is (no promise, no await per block).
    if (w && offset >= w.offset && offset + length <= w.offset + w.bytes.length) return w.bytes.subarray(offset - w.offset, offset - w.offset + length);
    const whole = this.limits.wholePayloadBytes ?? 0;
    if (t.glaze.size > 0 && t.glaze.size <= whole && t.glaze.size <= (this.limits.payloadCacheBytes ?? 0)) return this.readWhole(t, offset, length, fetch);
    if (length > this.limits.windowBytes) return fetch(offset, offset + length - 1);
    const end = Math.min(t.glaze.size, offset + Math.max(length, this.limits.windowBytes)) - 1;
    return fetch(offset, end).then((bytes) => {
      t.window = { offset, bytes };
      return bytes.subarray(0, length);
    });
  }

  /** The whole payload from the shared cache (read once on a miss); the transfer's window then points at it. */
  private readWhole(t: Transfer, offset: number, length: number, fetch: (start: number, end: number) => Promise<Uint8Array>): Uint8Array | Promise<Uint8Array> {
    const id = `${t.glaze.sha256}:${t.glaze.size}`;
    const cached = this.payloads.get(id);
    const use = (bytes: Uint8Array) => {
      t.window = { offset: 0, bytes };
      return bytes.subarray(offset, offset + length);
    };
    if (cached) {
      cached.usedSeq = ++this.useSeq;
      return use(cached.bytes);
    }
    let pending = this.loading.get(id);
    if (!pending) {
      pending = fetch(0, t.glaze.size - 1).then(
        (bytes) => {
          this.loading.delete(id);
          if (bytes.length !== t.glaze.size) throw new Error(`payload ${t.glaze.id}: read ${bytes.length} bytes, expected ${t.glaze.size}`);
          this.payloads.set(id, { bytes, usedSeq: ++this.useSeq });
          this.payloadBytes += bytes.length;
          this.evictPayloads(id);
          return bytes;
        },
        (e: unknown) => {
          this.loading.delete(id);
          throw e;
        },
      );
      this.loading.set(id, pending);
    }
    return pending.then(use);
  }

  /** Drops payloads over the budget (unread ones first), and the windows that point into them. */
  private evictPayloads(keep: string): void {
    const budget = this.limits.payloadCacheBytes ?? 0;
    while (this.payloadBytes > budget && this.payloads.size > 1) {
      // Payloads no transfer is reading go first (least recently loaded), then the least recently loaded.
      const reading = new Set<Uint8Array>();
      for (const tr of this.transfers.values()) if (tr.window) reading.add(tr.window.bytes);
      let oldest: [string, CachedPayload] | undefined;
      for (const e of this.payloads) {
        if (e[0] === keep) continue;
        const better = !oldest || (reading.has(oldest[1].bytes) && !reading.has(e[1].bytes)) || (reading.has(oldest[1].bytes) === reading.has(e[1].bytes) && e[1].usedSeq < oldest[1].usedSeq);
        if (better) oldest = e;
      }
      if (!oldest) return;
      this.payloads.delete(oldest[0]);
      this.payloadBytes -= oldest[1].bytes.length;
      for (const tr of this.transfers.values()) if (tr.window?.bytes === oldest[1].bytes) tr.window = undefined;
    }
  }
}
