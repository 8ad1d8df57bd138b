// Disk images for the installer's e2e tests: Glazes in the A6 layout, and the disk read back
// independently of the installer (marker from the spec, partition 1 mounted read-only).
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
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

