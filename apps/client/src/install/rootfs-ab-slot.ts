/** Raw I/O on a slot (a block device, a loop device or a plain file): capacity, write, read-back digest. */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';

const CHUNK = 1 << 20;

function isBlockDevice(path: string): boolean {
  return statSync(path).isBlockDevice();
}

/** Bytes a slot can hold: a block device's size (sysfs), a plain file's length. */
export function slotCapacity(path: string): number {
  const st = statSync(path, { bigint: true });
  if (!st.isBlockDevice()) return Number(st.size);
  // Linux dev_t: major in bits 8–19 and 32–43, minor in bits 0–7 and 20–31.
  const major = ((st.rdev >> 8n) & 0xfffn) | ((st.rdev >> 32n) & ~0xfffn);
  const minor = (st.rdev & 0xffn) | ((st.rdev >> 12n) & ~0xffn);
  const sectors = readFileSync(`/sys/dev/block/${major}:${minor}/size`, 'utf8').trim();
  return Number(sectors) * 512;
}

/**
 * Drops the kernel's cached pages of a block device (BLKFLSBUF through `blockdev --flushbufs`), so
 * the read-back that follows reads the medium, not the page cache we just wrote.
 */
function flushBlockCache(path: string): void {
  if (isBlockDevice(path)) spawnSync('blockdev', ['--flushbufs', path], { stdio: 'ignore' });
}

/**
 * Copies `payloadPath` onto the slot from offset 0 and fsyncs it; returns the payload's SHA-256
 * (hex) as read while copying. `onChunk` is awaited after every chunk (progress, tests).
 */
export async function writeSlot(payloadPath: string, slotPath: string, onChunk: (bytes: number) => Promise<void> | void): Promise<{ sha256: string; size: number }> {
  const src = await open(payloadPath, 'r');
  const dst = await open(slotPath, 'r+');
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(CHUNK);
  let pos = 0;
  try {
    for (;;) {
      const { bytesRead } = await src.read(buf, 0, CHUNK, pos);
      if (bytesRead === 0) break;
      const chunk = buf.subarray(0, bytesRead);
      hash.update(chunk);
      let written = 0;
      while (written < bytesRead) written += (await dst.write(chunk, written, bytesRead - written, pos + written)).bytesWritten;
      pos += bytesRead;
      await onChunk(pos);
    }
    await dst.sync();
  } finally {
    await src.close();
    await dst.close();
  }
  return { sha256: hash.digest('hex'), size: pos };
}

/** SHA-256 (hex) of the first `size` bytes of a slot, read from the medium. */
export async function digestOfSlot(slotPath: string, size: number): Promise<string> {
  flushBlockCache(slotPath);
  const fh = await open(slotPath, 'r');
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(CHUNK);
  let pos = 0;
  try {
    while (pos < size) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(CHUNK, size - pos), pos);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}
