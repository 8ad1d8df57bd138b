import { describe, expect, it } from 'vitest';
import type { MetalPrincipal } from '../enrollment/model.ts';
import type { Glaze } from '../glazes/model.ts';
import { BlobTransfers } from './transfers.ts';

const metal = { metalId: 'm1', ownerId: 'o1', serial: 'psk:m1.1', fingerprint: '', notAfter: '', spki: new Uint8Array(0) } as unknown as MetalPrincipal;
const glaze = (id: string, size = 10_000) => ({ id, size, sha256: 'ab'.repeat(32) }) as unknown as Glaze;
const bytes = new Uint8Array(10_000).map((_, i) => i % 251);

function setup(limits = { maxTransfers: 3, windowBytes: 1000, idleMs: 5_000, recheckMs: 1_000 }) {
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
});
