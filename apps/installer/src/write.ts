/**
 * The power-safe streaming write (A6) of a Glaze whose manifest is already verified: the bytes
 * arrive in order (from the gateway, resumable) and go to the disk without being spooled.
 *
 *   1. the marker is wiped and flushed (from here the disk claims nothing);
 *   2. the first MiB (partition table, boot code) is kept in RAM, not written;
 *   3. every other byte is written as it arrives, in windows, while its SHA-256 is computed on the
 *      way; each window is written and read back with O_DIRECT (past the page cache: the bytes
 *      compared are the ones the device returns) and compared with the bytes still in RAM, then
 *      its buffer is reused — RAM stays at 2 × WINDOWS_IN_FLIGHT windows whatever the Glaze's size;
 *   4. when the last byte has arrived, the digest must be the signed manifest's, else
 *      suit_digest_mismatch: the first MiB was never written and the disk claims nothing;
 *   5. fsync; the first MiB; fsync; read back and compared.
 * Equal bytes read back + the streamed bytes' SHA-256 equal to the signed digest ⇒ the disk's image
 * range has the signed SHA-256, with one SHA-256 pass instead of two (bench/install-write.ts).
 *
 * From a RAM spool (the verify pass kept the Glaze and checked its digest) the same steps run
 * without the feed: when the spool is page-aligned (allocSpool) each window is written with
 * O_DIRECT straight from it and only the read-back needs buffers — no copy of the image in RAM.
 */
import { constants } from 'node:fs';
import { createHash } from 'node:crypto';
import { type FileHandle, open } from 'node:fs/promises';
import { InstallerError } from './errors.ts';
import { MARKER_SIZE } from './marker.ts';
import type { WritePlan } from './plan.ts';

/** Bytes written and read back as one unit (a multiple of 64 KiB, the wasm page). */
export const WINDOW_BYTES = 8 * 1024 * 1024;
/** Windows written or being read back at once: RAM ≈ 2 × WINDOWS_IN_FLIGHT × WINDOW_BYTES. */
export const WINDOWS_IN_FLIGHT = 4;
/**
 * Window from an aligned RAM spool: only the read-back needs buffers, so the same 64 MiB hold
 * windows twice as large (fewer, larger requests: bench/install-write.ts).
 */
export const SPOOL_WINDOW_BYTES = 16 * 1024 * 1024;
const ALIGN = 4096;

export type WriteStage = 'wipe' | 'body' | 'head' | 'verify';
export type WriteProgress = (stage: WriteStage, bytes: number) => void;

export interface StreamWriteOptions {
  disk: string;
  plan: WritePlan;
  /** The signed manifest's SHA-256 of the image (hex). */
  sha256: string;
  /** Hands the image's bytes, in order from byte 0, to `sink` (which applies back-pressure). */
  feed?: (sink: (chunk: Buffer) => Promise<void>) => Promise<void>;
  /**
   * Instead of `feed`: the whole image in RAM, its SHA-256 already checked against `sha256` by the
   * caller (the verify pass). Written without a copy when it comes from allocSpool.
   */
  spool?: Buffer;
  progress?: WriteProgress;
  /** Tuning (bench/install-write.ts): window bytes (a multiple of 64 KiB) and windows in flight. */
  window?: number;
  inFlight?: number;
}

export interface StreamWriteResult {
  bytesWritten: number;
  /** How the read-back reached the bytes: `direct` (O_DIRECT, the device) or `cached` (no O_DIRECT here, e.g. tmpfs). */
  readBack: 'direct' | 'cached';
}

const roundDown = (n: number, a: number): number => Math.floor(n / a) * a;
const roundUp = (n: number, a: number): number => Math.ceil(n / a) * a;

/**
 * Page-aligned buffers for O_DIRECT: a WebAssembly memory is mmap'd, so its start is page-aligned
 * (Node's Buffer allocator only promises 16 bytes).
 */
function alignedBuffers(count: number, size: number): Buffer[] {
  const mem = new WebAssembly.Memory({ initial: (count * size) / 65536 });
  return Array.from({ length: count }, (_, i) => Buffer.from(mem.buffer, i * size, size));
}

/** The backing stores allocSpool made page-aligned. */
const alignedSpools = new WeakSet<ArrayBufferLike>();

/**
 * RAM for the verify pass to keep a Glaze in: a page-aligned WebAssembly memory when one that
 * large can be had (up to 4 GiB), so streamGlaze writes from it with O_DIRECT without a copy; a
 * plain Buffer otherwise (then the windows are copied, as from the network).
 */
export function allocSpool(size: number): Buffer {
  try {
    const mem = new WebAssembly.Memory({ initial: Math.max(1, Math.ceil(size / 65536)) });
    alignedSpools.add(mem.buffer);
    return Buffer.from(mem.buffer, 0, size);
  } catch {
    return Buffer.allocUnsafe(size);
  }
}

const isAligned = (b: Buffer): boolean => alignedSpools.has(b.buffer) && b.byteOffset % ALIGN === 0;

async function writeAt(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) done += (await fh.write(buf, done, buf.length - done, position + done)).bytesWritten;
}

async function readAt(fh: FileHandle, buf: Buffer, position: number, want: number, need: number): Promise<void> {
  let done = 0;
  while (done < need) {
    const { bytesRead } = await fh.read(buf, done, want - done, position + done);
    if (bytesRead === 0) throw new Error(`unexpected end of the disk at byte ${position + done}`);
    done += bytesRead;
  }
}

interface Disk {
  /** Buffered: the marker, a tail shorter than ALIGN, fsync. */
  fh: FileHandle;
  /** O_DIRECT (read and write), or null where the filesystem has none (tmpfs): then fh does it all. */
  direct: FileHandle | null;
}

/** Writes buf[0, length) at position: the aligned part past the page cache, a short tail through it. */
async function writeWindow(d: Disk, buf: Buffer, position: number, length: number): Promise<void> {
  if (!d.direct) return writeAt(d.fh, buf.subarray(0, length), position);
  const aligned = roundDown(length, ALIGN);
  if (aligned > 0) await writeAt(d.direct, buf.subarray(0, aligned), position);
  if (aligned < length) await writeAt(d.fh, buf.subarray(aligned, length), position + aligned);
}

/** Reads [position, position + length) back into out and compares it with buf; verify_failed names the first differing byte. */
async function verifyWindow(d: Disk, disk: string, buf: Buffer, out: Buffer, position: number, length: number): Promise<void> {
  // O_DIRECT reads whole 4 KiB blocks (the kernel writes a buffered tail back first); the plan keeps
  // the last MiB of the disk free, so reading up to the next block past the image stays on the disk.
  if (d.direct) await readAt(d.direct, out, position, roundUp(length, ALIGN), length);
  else await readAt(d.fh, out, position, length, length);
  const got = out.subarray(0, length);
  const want = buf.subarray(0, length);
  if (!got.equals(want)) {
    let k = 0;
    while (got[k] === want[k]) k++;
    throw new InstallerError('verify_failed', `read-back of ${disk} differs from the streamed Glaze at byte ${position + k} (window of ${length} bytes at ${position})`);
  }
}

async function openDisk(disk: string): Promise<Disk> {
  const fh = await open(disk, 'r+');
  try {
    return { fh, direct: await open(disk, constants.O_RDWR | constants.O_DIRECT) };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EINVAL') {
      await fh.close();
      throw e;
    }
    return { fh, direct: null };
  }
}

/** Hands an unaligned spool to the window-filling sink in 8 MiB views. */
async function feedSpool(spool: Buffer, sink: (chunk: Buffer) => Promise<void>): Promise<void> {
  for (let at = 0; at < spool.length; at += 8 * 1024 * 1024) await sink(spool.subarray(at, Math.min(spool.length, at + 8 * 1024 * 1024)));
}

/** Writes the Glaze as described above; resolves once the whole image is on the disk and read back equal. */
export async function streamGlaze(o: StreamWriteOptions): Promise<StreamWriteResult> {
  const progress = o.progress ?? (() => {});
  const { plan } = o;
  const size = plan.head.length + plan.body.length;
  if (!o.feed === !o.spool) throw new TypeError('streamGlaze: expected either feed or spool');
  if (o.spool && o.spool.length !== size) throw new InstallerError('suit_size_mismatch', `the spool holds ${o.spool.length} bytes, the manifest ${size}`);
  const zeroCopy = o.spool !== undefined && isAligned(o.spool);
  const windowBytes = o.window ?? (zeroCopy ? SPOOL_WINDOW_BYTES : WINDOW_BYTES);
  const slots = o.inFlight ?? WINDOWS_IN_FLIGHT;
  if (windowBytes % 65536 !== 0 || windowBytes < plan.head.length || slots < 1) throw new RangeError(`window: expected a multiple of 64 KiB ≥ the head, came ${windowBytes} × ${slots}`);
  let written = 0;
  let d: Disk | undefined;
  // Per slot: the window being filled or written (none from an aligned spool), its read-back buffer, and the task using them.
  const tasks: (Promise<void> | undefined)[] = Array.from({ length: slots });
  let failed: InstallerError | undefined;
  try {
    try {
      d = await openDisk(o.disk);
    } catch (e) {
      throw new InstallerError('write_failed', `cannot open ${o.disk}: ${(e as Error).message}`);
    }
    const disk = d;
    const direct = zeroCopy && disk.direct !== null;
    const bufs = alignedBuffers(direct ? slots : 2 * slots, windowBytes);
    const readBuf = (slot: number): Buffer => bufs[direct ? slot : slots + slot]!;
    const fillBuf = (slot: number): Buffer => bufs[slot]!;

    // The marker goes before the first byte is written (not before the first byte arrives: a
    // download that fails early leaves the disk as it was).
    let wiped: Promise<void> | undefined;
    const wipe = (): Promise<void> =>
      (wiped ??= (async () => {
        await writeAt(disk.fh, Buffer.alloc(MARKER_SIZE), plan.markerOffset);
        await disk.fh.sync();
        progress('wipe', 0);
      })());

    /** Writes src[0, length) at position from this slot, then reads it back into the slot's buffer and compares. */
    const launch = async (slot: number, src: Buffer, position: number, length: number): Promise<void> => {
      await wipe();
      tasks[slot] = (async () => {
        await writeWindow(disk, src, position, length);
        await verifyWindow(disk, o.disk, src, readBuf(slot), position, length);
        written += length;
        progress('body', written);
      })().catch((e: unknown) => {
        // Typed here: the downloader retries plain errors, and a disk error is not the network's.
        failed ??= e instanceof InstallerError ? e : new InstallerError('write_failed', `writing ${o.disk} at byte ${position} failed: ${(e as Error).message}`);
        throw failed;
      });
      // Handled here so a window failing while another is awaited is no unhandled rejection;
      // `failed` stops the loop and the slot's next await still sees the error.
      tasks[slot].catch(() => undefined);
    };
    /** Waits until a slot's buffers are free (its last window is on the disk and read back). */
    const free = async (slot: number): Promise<void> => {
      if (!tasks[slot]) return;
      await tasks[slot];
      tasks[slot] = undefined;
    };

    let head: Buffer;
    if (direct) {
      // The spool is page-aligned: each window is written straight from it (its digest was checked).
      const spool = o.spool!;
      head = spool.subarray(0, plan.head.length);
      let slot = 0;
      for (let at = plan.body.offset; at < size; at += windowBytes) {
        await free(slot);
        if (failed) throw failed;
        await launch(slot, spool.subarray(at), at, Math.min(windowBytes, size - at));
        slot = (slot + 1) % slots;
      }
      await Promise.all(tasks);
    } else {
      head = Buffer.allocUnsafe(plan.head.length);
      const h = o.spool ? undefined : createHash('sha256');
      let received = 0;
      let slot = 0;
      let fill = 0;
      let windowAt = plan.body.offset;
      const sink = async (chunk: Buffer): Promise<void> => {
        if (failed) throw failed;
        if (received + chunk.length > size) throw new InstallerError('suit_size_mismatch', `the stream holds more than the manifest's ${size} bytes`);
        h?.update(chunk);
        let c = chunk;
        if (received < plan.head.length) {
          const n = Math.min(c.length, plan.head.length - received);
          c.copy(head, received, 0, n);
          received += n;
          c = c.subarray(n);
        }
        while (c.length > 0) {
          if (fill === 0) await free(slot);
          const n = Math.min(c.length, windowBytes - fill);
          c.copy(fillBuf(slot), fill, 0, n);
          fill += n;
          received += n;
          c = c.subarray(n);
          if (fill === windowBytes) {
            await launch(slot, fillBuf(slot), windowAt, fill);
            windowAt += fill;
            fill = 0;
            slot = (slot + 1) % slots;
          }
        }
      };

      await (o.spool ? feedSpool(o.spool, sink) : o.feed!(sink));
      if (fill > 0) await launch(slot, fillBuf(slot), windowAt, fill);
      await Promise.all(tasks);
      if (received !== size) throw new InstallerError('suit_size_mismatch', `the stream ended after ${received} of the manifest's ${size} bytes`);
      const got = h ? h.digest('hex') : o.sha256;
      if (got !== o.sha256) {
        throw new InstallerError('suit_digest_mismatch', `the streamed Glaze has SHA-256 ${got}; the signed manifest says ${o.sha256} (the first MiB was not written; the disk claims nothing)`);
      }
      head.copy(fillBuf(0));
      head = fillBuf(0);
    }

    await wipe();
    await disk.fh.sync();
    await writeWindow(disk, head, 0, plan.head.length);
    written += plan.head.length;
    progress('head', written);
    await disk.fh.sync();
    progress('verify', written);
    await verifyWindow(disk, o.disk, head, readBuf(0), 0, plan.head.length);
    return { bytesWritten: written, readBack: disk.direct ? 'direct' : 'cached' };
  } catch (e) {
    await Promise.allSettled(tasks);
    if (e instanceof InstallerError) throw e;
    throw new InstallerError('write_failed', `writing ${o.disk} failed after ${written} bytes: ${(e as Error).message}`);
  } finally {
    await d?.direct?.close().catch(() => undefined);
    await d?.fh.close().catch(() => undefined);
  }
}
