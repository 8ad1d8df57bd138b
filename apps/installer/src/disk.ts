/**
 * The target disk: finding it, its size, its marker, and the partition 1 of the written image
 * (the power-safe write is write.ts). Works on a block device (the metal's disk in
 * the initramfs) and on a regular file (a disk image in tests and benches).
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { basename } from 'node:path';
import { promisify } from 'node:util';
import { InstallerError } from './errors.ts';
import { decodeMarker, encodeMarker, MARKER_SIZE, type Marker, type MarkerResult } from './marker.ts';
import type { WritePlan } from './plan.ts';

const run = promisify(execFile);

/** `tips.disk` when given, else the first disk of /sys/block that is not removable, ram, loop, sr (A6). */
export function defaultDisk(sysBlock = '/sys/block'): string | null {
  let names: string[];
  try {
    names = readdirSync(sysBlock).sort();
  } catch {
    return null;
  }
  for (const n of names) {
    if (/^(loop|ram|sr|zram|fd|dm-|md|nbd)/.test(n)) continue;
    try {
      if (readFileSync(`${sysBlock}/${n}/removable`, 'utf8').trim() === '1') continue;
      if (Number(readFileSync(`${sysBlock}/${n}/size`, 'utf8').trim()) === 0) continue;
    } catch {
      continue;
    }
    return `/dev/${n}`;
  }
  return null;
}

/** Size in bytes of a block device (from sysfs: no ioctl in Node) or a regular file. */
export function diskSize(path: string): number {
  const st = statSync(path);
  if (st.isFile()) return st.size;
  if (st.isBlockDevice()) {
    const name = basename(realpathSync(path));
    return Number(readFileSync(`/sys/class/block/${name}/size`, 'utf8').trim()) * 512;
  }
  throw new InstallerError('no_disk', `${path}: expected a block device or a disk image file`);
}

async function readExactly(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) throw new Error(`unexpected end of ${buf.length} bytes at ${position + done}`);
    done += bytesRead;
  }
}

async function writeExactly(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, position + done);
    done += bytesWritten;
  }
}

/** The marker of a disk, read without opening it for writing. */
export async function readMarker(path: string, size: number): Promise<MarkerResult> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(MARKER_SIZE);
    await readExactly(fh, b, size - MARKER_SIZE);
    return decodeMarker(b);
  } finally {
    await fh.close();
  }
}

/** Writes the marker (last step) and flushes it. */
export async function writeMarker(disk: string, plan: WritePlan, marker: Marker): Promise<void> {
  const fh = await open(disk, 'r+');
  try {
    await writeExactly(fh, Buffer.from(encodeMarker(marker)), plan.markerOffset);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export interface Partition1 {
  /** Byte offset and length of MBR partition 1. */
  offset: number;
  length: number;
  /** ext2/3/4 volume label, or null when partition 1 holds no ext filesystem. */
  label: string | null;
}

const EXT_MAGIC = 0xef53;

/** MBR partition 1 as a byte range, or null (no MBR signature, empty entry, GPT protective). */
export function mbrPartition1(sector0: Uint8Array): { offset: number; length: number } | null {
  const b = Buffer.from(sector0.buffer, sector0.byteOffset, sector0.length);
  if (b.length < 512 || b[510] !== 0x55 || b[511] !== 0xaa) return null;
  const type = b[446 + 4]!;
  if (type === 0 || type === 0xee) return null;
  const offset = b.readUInt32LE(446 + 8) * 512;
  const length = b.readUInt32LE(446 + 12) * 512;
  if (offset === 0 || length === 0) return null;
  return { offset, length };
}

/** The volume label of an ext2/3/4 superblock (1024 bytes at offset 1024), or null if it is none. */
export function extLabel(superblock: Uint8Array): string | null {
  const sb = Buffer.from(superblock.buffer, superblock.byteOffset, superblock.length);
  if (sb.length < 136 || sb.readUInt16LE(56) !== EXT_MAGIC) return null;
  const raw = sb.subarray(120, 136);
  const nul = raw.indexOf(0);
  return raw.subarray(0, nul < 0 ? 16 : nul).toString('utf8');
}

export async function readPartition1(disk: string): Promise<Partition1 | null> {
  const fh = await open(disk, 'r');
  try {
    const s0 = Buffer.alloc(512);
    await readExactly(fh, s0, 0);
    const p = mbrPartition1(s0);
    if (!p) return null;
    const sb = Buffer.alloc(1024);
    const ok = await readExactly(fh, sb, p.offset + 1024).then(
      () => true,
      () => false,
    );
    return { ...p, label: ok ? extLabel(sb) : null };
  } finally {
    await fh.close();
  }
}

/** The device node of partition 1 of a block device (vda → vda1, nvme0n1 → nvme0n1p1). */
export function partitionDevice(disk: string): string {
  return /\d$/.test(disk) ? `${disk}p1` : `${disk}1`;
}

async function waitFor(path: string, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (existsSync(path)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return existsSync(path);
}

/**
 * A device for partition 1 of the disk and how to let it go: the kernel's partition device of a
 * block device (after re-reading its table), or a loop device of a disk image (`losetup -P`, or
 * the partition's byte range where the kernel reads no partition tables).
 */
export async function attachPartition1(disk: string, p: Partition1): Promise<{ device: string; detach: () => Promise<void> }> {
  if (statSync(disk).isBlockDevice()) {
    await run('blockdev', ['--rereadpt', disk]).catch(() => undefined);
    const dev = partitionDevice(realpathSync(disk));
    if (await waitFor(dev, 5000)) return { device: dev, detach: async () => {} };
  }
  const { stdout } = await run('losetup', ['-P', '-f', '--show', disk]);
  const loop = stdout.trim();
  if (await waitFor(`${loop}p1`, 2000)) return { device: `${loop}p1`, detach: async () => void (await run('losetup', ['-d', loop])) };
  await run('losetup', ['-d', loop]);
  const r = await run('losetup', ['-f', '--show', '-o', String(p.offset), '--sizelimit', String(p.length), disk]);
  const dev = r.stdout.trim();
  return { device: dev, detach: async () => void (await run('losetup', ['-d', dev])) };
}
