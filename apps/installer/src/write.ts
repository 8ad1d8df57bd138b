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
const ALIGN = 4096;

export type WriteStage = 'wipe' | 'body' | 'head' | 'verify';
export type WriteProgress = (stage: WriteStage, bytes: number) => void;

export interface StreamWriteOptions {
  disk: string;
  plan: WritePlan;
  /** The signed manifest's SHA-256 of the image (hex). */
  sha256: string;
  /** Hands the image's bytes, in order from byte 0, to `sink` (which applies back-pressure). */
  feed: (sink: (chunk: Buffer) => Promise<void>) => Promise<void>;
  progress?: WriteProgress;
  /**
   * The feed hands over a RAM spool whose SHA-256 the caller already checked against `sha256` (the
   * verify pass kept the bytes): they are not hashed a second time. Size and read-back still checked.
   */
  digestChecked?: boolean;
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
    throw new InstallerError('verify_failed', `read-back of ${disk} differs from the streamed Glaze at byte ${position + k}`);
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

/** Writes the Glaze as described above; resolves once the whole image is on the disk and read back equal. */
export async function streamGlaze(o: StreamWriteOptions): Promise<StreamWriteResult> {
  const progress = o.progress ?? (() => {});
  const { plan } = o;
  const windowBytes = o.window ?? WINDOW_BYTES;
  const slots = o.inFlight ?? WINDOWS_IN_FLIGHT;
  if (windowBytes % 65536 !== 0 || windowBytes < plan.head.length || slots < 1) throw new RangeError(`window: expected a multiple of 64 KiB ≥ the head, came ${windowBytes} × ${slots}`);
  const size = plan.head.length + plan.body.length;
  let written = 0;
  let d: Disk | undefined;
  // Per slot: the window being filled or written, its read-back buffer, and the task using them.
  const tasks: (Promise<void> | undefined)[] = Array.from({ length: slots });
  let failed: InstallerError | undefined;
  try {
    try {
      d = await openDisk(o.disk);
    } catch (e) {
      throw new InstallerError('write_failed', `cannot open ${o.disk}: ${(e as Error).message}`);
    }
    const disk = d;
    const bufs = alignedBuffers(2 * slots, windowBytes);
    const head = Buffer.allocUnsafe(plan.head.length);

    // The marker goes before the first byte is written (not before the first byte arrives: a
    // download that fails early leaves the disk as it was).
    let wiped: Promise<void> | undefined;
    const wipe = (): Promise<void> =>
      (wiped ??= (async () => {
        await writeAt(disk.fh, Buffer.alloc(MARKER_SIZE), plan.markerOffset);
        await disk.fh.sync();
        progress('wipe', 0);
      })());

    const launch = async (slot: number, position: number, length: number): Promise<void> => {
      await wipe();
      tasks[slot] = (async () => {
        await writeWindow(disk, bufs[2 * slot]!, position, length);
        await verifyWindow(disk, o.disk, bufs[2 * slot]!, bufs[2 * slot + 1]!, position, length);
        written += length;
        progress('body', written);
      })().catch((e: unknown) => {
        // Typed here: the downloader retries plain errors, and a disk error is not the network's.
        failed ??= e instanceof InstallerError ? e : new InstallerError('write_failed', `writing ${o.disk} at byte ${position} failed: ${(e as Error).message}`);
        throw failed;
      });
    };

    const h = o.digestChecked ? undefined : createHash('sha256');
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
        if (fill === 0 && tasks[slot]) {
          // This slot's buffers are free once its last window is on the disk and read back.
          await tasks[slot];
          tasks[slot] = undefined;
        }
        const n = Math.min(c.length, windowBytes - fill);
        c.copy(bufs[2 * slot]!, fill, 0, n);
        fill += n;
        received += n;
        c = c.subarray(n);
        if (fill === windowBytes) {
          await launch(slot, windowAt, fill);
          windowAt += fill;
          fill = 0;
          slot = (slot + 1) % slots;
        }
      }
    };

    await o.feed(sink);
    if (fill > 0) await launch(slot, windowAt, fill);
    await Promise.all(tasks);
    if (received !== size) throw new InstallerError('suit_size_mismatch', `the stream ended after ${received} of the manifest's ${size} bytes`);
    const got = h ? h.digest('hex') : o.sha256;
    if (got !== o.sha256) {
      throw new InstallerError('suit_digest_mismatch', `the streamed Glaze has SHA-256 ${got}; the signed manifest says ${o.sha256} (the first MiB was not written; the disk claims nothing)`);
    }

    await wipe();
    await disk.fh.sync();
    head.copy(bufs[0]!);
    await writeWindow(disk, bufs[0]!, 0, head.length);
    written += head.length;
    progress('head', written);
    await disk.fh.sync();
    progress('verify', written);
    await verifyWindow(disk, o.disk, bufs[0]!, bufs[1]!, 0, head.length);
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
