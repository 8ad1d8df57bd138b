// Disk images for the installer's e2e tests: Glazes in the A6 layout, the disk read back
// independently of the installer (marker from the spec, partition 1 mounted read-only), and a disk
// that lies (QEMU's qcow2 driver with two clusters aliased, served through the kernel's FUSE).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';

export const MiB = 1024 * 1024;

// ---------------------------------------------------------------- Glaze images (A6 layout)

export interface Glaze {
  id: string;
  bytes: Buffer;
  size: number;
  sha256: string;
  /** SHA-256 of /payload.bin inside partition 1. */
  payloadSha256: string;
}

export const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** A raw disk image: MBR, partition 1 at 1 MiB = ext4 labelled tips-root holding a random payload. */
export function makeGlaze(work: string, id: string, sizeMiB: number, payloadMiB: number): Glaze {
  const dir = join(work, `${id}-root`);
  mkdirSync(join(dir, 'etc'), { recursive: true });
  const payload = randomBytes(payloadMiB * MiB);
  writeFileSync(join(dir, 'payload.bin'), payload);
  writeFileSync(join(dir, 'etc/hostname'), `${id}\n`);
  const part = join(work, `${id}.part`);
  const partBytes = (sizeMiB - 1) * MiB;
  writeFileSync(part, Buffer.alloc(0));
  execFileSync('truncate', ['-s', String(partBytes), part]);
  execFileSync('mkfs.ext4', ['-q', '-F', '-L', 'tips-root', '-d', dir, part]);
  const mbr = Buffer.alloc(MiB);
  const e = 446;
  mbr[e] = 0x80;
  mbr[e + 4] = 0x83;
  mbr.writeUInt32LE(2048, e + 8);
  mbr.writeUInt32LE(partBytes / 512, e + 12);
  mbr[510] = 0x55;
  mbr[511] = 0xaa;
  randomBytes(64).copy(mbr, 0); // boot code stand-in: the head must arrive intact too
  const bytes = Buffer.concat([mbr, readFileSync(part)]);
  rmSync(part);
  rmSync(dir, { recursive: true });
  return { id, bytes, size: bytes.length, sha256: sha(bytes), payloadSha256: sha(payload) };
}

// ---------------------------------------------------------------- the disk, read independently of the installer

export interface MarkerJson {
  glazeId: string;
  sha256: string;
  size: number;
  sequence: number;
  jobId: string;
  at: string;
}

/** The A6 marker, decoded here from the spec (not with the installer's codec). */
export function readMarker(disk: string): MarkerJson | null {
  const b = readFileSync(disk).subarray(statSync(disk).size - 4096);
  if (b.subarray(0, 10).toString('latin1') !== 'TIPSMARK1\n') return null;
  if (sha(b.subarray(0, 4064)) !== b.subarray(4064).toString('hex')) return null;
  const nl = b.indexOf(0x0a, 10);
  return JSON.parse(b.subarray(10, nl).toString('utf8')) as MarkerJson;
}

/** Mounts partition 1 read-only (no journal replay) and returns what the checks need. */
export function inspectRoot(disk: string): { payloadSha256: string; config: Record<string, unknown> | null; enrollmentMode: number | null; enrollment: unknown; ca: string | null } {
  const loop = execFileSync('losetup', ['-r', '-f', '--show', '-o', String(MiB), disk], { encoding: 'utf8' }).trim();
  const mnt = mkdtempSync(join(tmpdir(), 'tips-inst-mnt-'));
  try {
    execFileSync('mount', ['-t', 'ext4', '-o', 'ro,noload', loop, mnt]);
    try {
      const cfgDir = join(mnt, 'etc/tips-client');
      const read = (f: string): string | null => {
        try {
          return readFileSync(join(cfgDir, f), 'utf8');
        } catch {
          return null;
        }
      };
      const cfg = read('config.json');
      const enr = read('enrollment.json');
      return {
        payloadSha256: sha(readFileSync(join(mnt, 'payload.bin'))),
        config: cfg ? (JSON.parse(cfg) as Record<string, unknown>) : null,
        enrollment: enr ? JSON.parse(enr) : null,
        enrollmentMode: enr ? statSync(join(cfgDir, 'enrollment.json')).mode & 0o777 : null,
        ca: read('ca.pem'),
      };
    } finally {
      execFileSync('umount', [mnt]);
    }
  } finally {
    execFileSync('losetup', ['-d', loop]);
    rmSync(mnt, { recursive: true, force: true });
  }
}

/**
 * The invariant of S12/A6: a disk that claims a Glaze fully holds it — its first MiB (boot code,
 * partition table) is the Glaze's and its root filesystem holds the Glaze's payload, configured.
 */
export function assertHonestClaim(disk: string, glazes: Glaze[], label: string): MarkerJson | null {
  const m = readMarker(disk);
  if (!m) return null;
  const g = glazes.find((x) => x.sha256 === m.sha256);
  expect(g, `${label}: the marker names a Glaze we never served`).toBeDefined();
  const head = readFileSync(disk).subarray(0, MiB);
  expect(sha(head), `${label}: the disk claims ${g!.id} but its first MiB is not ${g!.id}'s`).toBe(sha(g!.bytes.subarray(0, MiB)));
  const root = inspectRoot(disk);
  expect(root.payloadSha256, `${label}: the disk claims ${g!.id} but its payload is not ${g!.id}'s`).toBe(g!.payloadSha256);
  expect(root.config, `${label}: a claimed disk carries the TIPS-C configuration`).not.toBeNull();
  return m;
}


// ---------------------------------------------------------------- a disk that lies

/**
 * Where guest cluster `cluster`'s L2 entry lives in a qcow2 image (version 3, standard 8-byte L2
 * entries, read from the spec's header fields), and its value.
 */
export function qcow2L2Entry(image: string, cluster: number): { at: number; entry: bigint } {
  const fd = openSync(image, 'r');
  try {
    const h = Buffer.alloc(104);
    readSync(fd, h, 0, h.length, 0);
    if (h.readUInt32BE(0) !== 0x514649fb || h.readUInt32BE(4) !== 3) throw new Error(`${image}: not a qcow2 v3 image`);
    if (h.readBigUInt64BE(72) & 0x10n) throw new Error(`${image}: extended L2 entries are not handled here`);
    const perL2 = 2 ** (h.readUInt32BE(20) - 3);
    const e = Buffer.alloc(8);
    readSync(fd, e, 0, 8, Number(h.readBigUInt64BE(40)) + 8 * Math.floor(cluster / perL2));
    const l2 = Number(e.readBigUInt64BE(0) & 0x00fffffffffffe00n);
    if (l2 === 0) throw new Error(`${image}: guest cluster ${cluster} has no L2 table`);
    const at = l2 + 8 * (cluster % perL2);
    readSync(fd, e, 0, 8, at);
    return { at, entry: e.readBigUInt64BE(0) };
  } finally {
    closeSync(fd);
  }
}

export function setQcow2L2Entry(image: string, at: number, entry: bigint): void {
  const e = Buffer.alloc(8);
  e.writeBigUInt64BE(entry);
  const fd = openSync(image, 'r+');
  try {
    writeSync(fd, e, 0, 8, at);
  } finally {
    closeSync(fd);
  }
}

const fsType = (path: string): string => {
  try {
    return execFileSync('findmnt', ['-n', '-o', 'FSTYPE', '--mountpoint', path], { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
};

/**
 * A qcow2 image served as a regular file through the kernel's FUSE by qemu-storage-daemon (a real
 * peer: QEMU's block layer answers every read and write, O_DIRECT ones included). stop() ends the
 * daemon (it unmounts) and unmounts lazily if it could not.
 */
export async function fuseExport(image: string, mountpoint: string): Promise<{ stop: () => Promise<void> }> {
  writeFileSync(mountpoint, '');
  // setpriv: the daemon goes when the test process does, even on a crash.
  const child: ChildProcess = spawn(
    'setpriv',
    ['--pdeathsig', 'TERM', 'qemu-storage-daemon', '--blockdev', `driver=file,node-name=f,filename=${image},cache.direct=off`, '--blockdev', 'driver=qcow2,node-name=q,file=f', '--export', `type=fuse,id=e,node-name=q,mountpoint=${mountpoint},writable=on`],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let err = '';
  child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<void>((ok) => child.once('exit', () => ok()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((ok) => setTimeout(ok, 10_000))]);
    }
    if (fsType(mountpoint) === 'fuse') execFileSync('umount', ['-l', mountpoint]);
  };
  for (let i = 0; fsType(mountpoint) !== 'fuse'; i++) {
    if (child.exitCode !== null || i > 300) {
      await stop();
      throw new Error(`qemu-storage-daemon did not export ${image}: ${err}`);
    }
    await new Promise((ok) => setTimeout(ok, 100));
  }
  // QEMU 7.2's FUSE export receives every request into one buffer and lets the next request
  // overwrite it while a write is still in flight: with the kernel's usual 12 requests at once, a
  // multi-MiB O_DIRECT write is acknowledged and other bytes stored (a lie of its own, which the
  // installer's read-back catches too — but not one a test can place). One request at a time
  // (the connection's max_background) makes the export honest, so the only lie is the one set up.
  const connections = '/sys/fs/fuse/connections';
  if (fsType(connections) !== 'fusectl') execFileSync('mount', ['-t', 'fusectl', 'fusectl', connections]);
  writeFileSync(join(connections, String(statSync(mountpoint).dev), 'max_background'), '1');
  return { stop };
}
