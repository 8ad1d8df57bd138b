import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InstallerError } from './errors.ts';
import { encodeMarker } from './marker.ts';
import { HEAD_SIZE, planWrite } from './plan.ts';
import { allocSpool, streamGlaze, type WriteStage } from './write.ts';

const MiB = 1024 * 1024;
const dir = mkdtempSync(join(tmpdir(), 'tips-installer-write-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function disk(name: string, size: number): { path: string; before: Buffer } {
  const path = join(dir, name);
  const before = randomBytes(size);
  // A valid marker at the end: the write must take it away before its first byte.
  Buffer.from(encodeMarker({ glazeId: 'glz_old', sha256: 'a'.repeat(64), size: 1, sequence: 1, jobId: 'p1j_old', at: 'x' })).copy(before, size - 4096);
  writeFileSync(path, before);
  return { path, before };
}

const feedOf = (bytes: Buffer, piece: number) => async (sink: (c: Buffer) => Promise<void>) => {
  for (let o = 0; o < bytes.length; o += piece) await sink(Buffer.from(bytes.subarray(o, o + piece)));
};

describe('T13 S12 Phase 1 streaming write (A6): digest on the way, windows read back, head last', () => {
  it('writes an image of odd size through small windows; the head goes after the body; the marker is wiped', async () => {
    const image = randomBytes(3 * MiB + 12345);
    const d = disk('ok.img', 8 * MiB);
    const stages: WriteStage[] = [];
    const r = await streamGlaze({ disk: d.path, plan: planWrite(8 * MiB, image.length), sha256: createHash('sha256').update(image).digest('hex'), feed: feedOf(image, 70_001), window: 1 * MiB, inFlight: 2, progress: (s) => stages.push(s) });
    expect(r.bytesWritten).toBe(image.length);
    const after = readFileSync(d.path);
    expect(after.subarray(0, image.length).equals(image)).toBe(true);
    expect(after.subarray(image.length, 8 * MiB - 4096).equals(d.before.subarray(image.length, 8 * MiB - 4096))).toBe(true);
    expect(after.subarray(8 * MiB - 4096).every((b) => b === 0)).toBe(true);
    expect(stages[0]).toBe('wipe');
    expect(stages.indexOf('head')).toBeGreaterThan(stages.lastIndexOf('body'));
    expect(stages.at(-1)).toBe('verify');
  });

  it('from a RAM spool, page-aligned (written without a copy) or not: the same bytes on the disk, the head last', async () => {
    const image = randomBytes(5 * MiB + 4097);
    const sha256 = createHash('sha256').update(image).digest('hex');
    const aligned = allocSpool(image.length);
    image.copy(aligned);
    for (const [name, spool] of [
      ['aligned', aligned],
      ['plain', Buffer.from(image)],
    ] as const) {
      const d = disk(`spool-${name}.img`, 16 * MiB);
      const stages: WriteStage[] = [];
      const r = await streamGlaze({ disk: d.path, plan: planWrite(16 * MiB, image.length), sha256, spool, window: 2 * MiB, inFlight: 2, progress: (s) => stages.push(s) });
      expect(r.bytesWritten).toBe(image.length);
      const after = readFileSync(d.path);
      expect(after.subarray(0, image.length).equals(image), name).toBe(true);
      expect(after.subarray(image.length, 16 * MiB - 4096).equals(d.before.subarray(image.length, 16 * MiB - 4096)), name).toBe(true);
      expect(stages.indexOf('head')).toBeGreaterThan(stages.lastIndexOf('body'));
    }
    const wrong = await streamGlaze({ disk: disk('spool-size.img', 16 * MiB).path, plan: planWrite(16 * MiB, image.length + 1), sha256, spool: aligned }).catch((x: unknown) => x);
    expect((wrong as InstallerError).code).toBe('suit_size_mismatch');
  });

  it('a stream whose digest is not the signed one: suit_digest_mismatch after the body, the first MiB never written', async () => {
    const image = randomBytes(2 * MiB + 5);
    const d = disk('bad.img', 8 * MiB);
    const sha256 = createHash('sha256').update(image).digest('hex');
    image[HEAD_SIZE + 7]! ^= 1;
    const e = await streamGlaze({ disk: d.path, plan: planWrite(8 * MiB, image.length), sha256, feed: feedOf(image, 65536), window: 1 * MiB, inFlight: 2 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(InstallerError);
    expect((e as InstallerError).code).toBe('suit_digest_mismatch');
    const after = readFileSync(d.path);
    expect(after.subarray(0, HEAD_SIZE).equals(d.before.subarray(0, HEAD_SIZE))).toBe(true);
    expect(after.subarray(8 * MiB - 4096).every((b) => b === 0)).toBe(true);
  });

  it('a feed that fails before the first window is full leaves the disk byte-identical (the marker too)', async () => {
    const d = disk('early.img', 8 * MiB);
    const feed = async (sink: (c: Buffer) => Promise<void>) => {
      await sink(randomBytes(MiB + 100));
      throw new InstallerError('download_failed', 'the gateway went away');
    };
    const e = await streamGlaze({ disk: d.path, plan: planWrite(8 * MiB, 4 * MiB), sha256: '0'.repeat(64), feed, window: 2 * MiB, inFlight: 2 }).catch((x: unknown) => x);
    expect((e as InstallerError).code).toBe('download_failed');
    expect(readFileSync(d.path).equals(d.before)).toBe(true);
  });

  it('more bytes than the manifest says: suit_size_mismatch; fewer: suit_size_mismatch', async () => {
    const d = disk('size.img', 8 * MiB);
    const image = randomBytes(2 * MiB);
    const sha256 = createHash('sha256').update(image).digest('hex');
    const more = await streamGlaze({ disk: d.path, plan: planWrite(8 * MiB, image.length - 1), sha256, feed: feedOf(image, 65536), window: MiB, inFlight: 2 }).catch((x: unknown) => x);
    expect((more as InstallerError).code).toBe('suit_size_mismatch');
    const fewer = await streamGlaze({ disk: d.path, plan: planWrite(8 * MiB, image.length + 1), sha256, feed: feedOf(image, 65536), window: MiB, inFlight: 2 }).catch((x: unknown) => x);
    expect((fewer as InstallerError).code).toBe('suit_size_mismatch');
  });
});
