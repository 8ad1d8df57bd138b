import { describe, expect, it } from 'vitest';
import type { MetalPrincipal } from '../enrollment/model.ts';
import type { Glaze } from '../glazes/model.ts';
import { BlobTransfers, type TransferLimits } from './transfers.ts';

const metal = { metalId: 'm1', ownerId: 'o1', serial: 'psk:m1.1', fingerprint: '', notAfter: '', spki: new Uint8Array(0) } as unknown as MetalPrincipal;
const glaze = (id: string, size = 10_000) => ({ id, size, sha256: 'ab'.repeat(32) }) as unknown as Glaze;
const bytes = new Uint8Array(10_000).map((_, i) => i % 251);

function setup(limits: TransferLimits = { maxTransfers: 3, windowBytes: 1000, idleMs: 5_000, recheckMs: 1_000 }) {
  let now = 0;
  const t = new BlobTransfers(() => now, limits);
  const fetches: [number, number][] = [];
  const fetch = async (start: number, end: number) => {
    fetches.push([start, end]);
    return bytes.slice(start, end + 1);
  };
  return { t, fetch, fetches, tick: (ms: number) => (now += ms) };
}

describe('S13 issue 12: Block2 transfer cache (principal checked once, read-ahead window, bounded)', () => {
  it('serves blocks from a window read once, reads the next window at its end, and never past the payload', async () => {
    const { t, fetch, fetches } = setup();
    const tr = t.start('p#1|g', metal, glaze('g'));
    for (let off = 0; off < 10_000; off += 256) {
      const len = Math.min(256, 10_000 - off);
      expect(await t.read(tr, off, len, fetch)).toEqual(bytes.subarray(off, off + len));
    }
    // 40 blocks of 256 bytes over 1000-byte windows: each window starts where a block did not fit.
    expect(fetches.length).toBeLessThan(15);
    expect(fetches.every(([s, e]) => e < 10_000 && e - s < 1000)).toBe(true);
  });

  it('a revocation signal, the re-check interval and idleness each end the "hit" (re-authentication follows)', () => {
    const { t, tick } = setup();
    t.start('k', metal, glaze('g'));
    expect(t.lookup('k').result).toBe('hit');
    t.revoke();
    const r = t.lookup('k');
    expect(r.result).toBe('recheck');
    expect(t.lookup('k').result).toBe('miss');
    t.start('k', metal, glaze('g'));
    tick(999);
    expect(t.lookup('k').result).toBe('hit');
    tick(1001);
    expect(t.lookup('k').result).toBe('recheck');
    t.start('k', metal, glaze('g'));
    tick(5001);
    expect(t.lookup('k').result).toBe('miss');
  });

  it('holds at most maxTransfers (least recently used dropped), so memory ≤ maxTransfers × windowBytes', async () => {
    const { t, fetch } = setup();
    for (const k of ['a', 'b', 'c']) await t.read(t.start(k, metal, glaze(k)), 0, 256, fetch);
    expect(t.lookup('a').result).toBe('hit');
    await t.read(t.start('d', metal, glaze('d')), 0, 256, fetch);
    expect(t.size).toBe(3);
    expect(t.lookup('b').result).toBe('miss');
    expect(t.lookup('a').result).toBe('hit');
    expect(t.bytesHeld()).toBeLessThanOrEqual(3 * 1000);
  });

  it('a re-check keeps the window of the same Glaze; sweep drops idle transfers', async () => {
    const { t, fetch, fetches, tick } = setup();
    const first = t.start('k', metal, glaze('g'));
    await t.read(first, 0, 256, fetch);
    tick(1500);
    const r = t.lookup('k');
    expect(r.result).toBe('recheck');
    const again = t.start('k', metal, glaze('g'), r.result === 'recheck' ? r.stale : undefined);
    await t.read(again, 256, 256, fetch);
    expect(fetches).toHaveLength(1);
    tick(6000);
    t.sweep();
    expect(t.size).toBe(0);
  });

  it('a payload up to wholePayloadBytes is read once for every transfer of the same bytes, within payloadCacheBytes (unread payloads dropped first, windows with them)', async () => {
    const { t, fetch, fetches } = setup({ maxTransfers: 8, windowBytes: 1000, idleMs: 5_000, recheckMs: 1_000, wholePayloadBytes: 10_000, payloadCacheBytes: 20_000 });
    const a1 = t.start('p#1|g', metal, glaze('g'));
    const a2 = t.start('p#2|g', metal, glaze('g'));
    // two devices' first blocks at once: one read of the whole payload
    const [x, y] = await Promise.all([t.read(a1, 0, 256, fetch), t.read(a2, 0, 256, fetch)]);
    expect(x).toEqual(bytes.subarray(0, 256));
    expect(y).toEqual(bytes.subarray(0, 256));
    expect(fetches).toEqual([[0, 9_999]]);
    // every later block is a synchronous slice (no promise)
    const mid = t.read(a1, 4096, 256, fetch);
    expect(mid).toBeInstanceOf(Uint8Array);
    expect(mid).toEqual(bytes.subarray(4096, 4352));
    expect(t.bytesHeld()).toBe(10_000);
    // two other payloads (other SHA-256) over the 20,000-byte budget: one no transfer reads any more goes first
    const other = (id: string, fill: string) => ({ id, size: 10_000, sha256: fill.repeat(64) }) as unknown as Glaze;
    await t.read(t.start('p#3|h', metal, other('h', 'c')), 0, 256, fetch);
    t.endSession('p#3');
    await t.read(t.start('p#4|i', metal, other('i', 'd')), 0, 256, fetch);
    expect(fetches).toHaveLength(3);
    expect(t.bytesHeld()).toBeLessThanOrEqual(20_000 + 8 * 1000);
    // 'h' was dropped (no transfer reading it, though loaded after 'g') and is read again; 'g' was kept
    t.endSession('p#4');
    await t.read(t.start('p#5|h', metal, other('h', 'c')), 0, 256, fetch);
    expect(fetches).toHaveLength(4);
    expect(t.read(a1, 8192, 256, fetch)).toBeInstanceOf(Uint8Array);
    expect(t.bytesHeld()).toBe(20_000);
  });
});
