// The Phase 1 image on its own (T13): `tips glaze build-phase1` makes a disk image from Debian's
// archive (mmdebstrap, cached) with its partition table, ext4 tips-root and extlinux, and the image's
// manifest is signed by the owner's key and binds its bytes. qemu booting it from its disk after the
// installer wrote it (SeaBIOS, extlinux, Debian's kernel and systemd, TIPS-C enrolling) is
// e2e/phase1-qemu.test.ts.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { importKey, verifyGlazeBinding } from '@tips/suit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TIPS } from './helpers.ts';

const MIB = 1024 * 1024;
let work: string;
let built: { image: string; envelope: string; size: number; sha256: string; sequence: number; kernel: string; seconds: { total: number } };

function must(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} → ${r.status}\n${r.stderr}`);
  return r.stdout;
}

/** Runs the real CLI (a long build: asynchronous, progress on stderr kept for the failure message). */
function tipsAsync(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [TIPS, ...args], { env: { ...process.env, TIPS_CONFIG: join(work, 'no-config.json') } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'tips-phase1-image-'));
  must('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', join(work, 'owner.pem')]);
  const r = await tipsAsync(['glaze', 'build-phase1', '--name', 'base-os', '--version', '1.0', '--sequence', '7', '--sign-key', join(work, 'owner.pem'), '--out', join(work, 'out'), '--json']);
  if (r.code !== 0) throw new Error(`build-phase1 exited ${r.code}:\n${r.stderr.slice(-4000)}`);
  built = JSON.parse(r.stdout);
}, 1_800_000);

afterAll(() => {
  if (work && !process.env.TIPS_KEEP) rmSync(work, { recursive: true, force: true });
});

describe('T13 Phase 1 image: tips glaze build-phase1 builds a signed, bootable disk image', () => {
  it('is an MBR disk whose bootable partition 1 starts at 1 MiB and holds ext4 labelled tips-root, with extlinux in it', () => {
    expect(built.size % MIB).toBe(0);
    const t = JSON.parse(must('sfdisk', ['--json', built.image])) as { partitiontable: { label: string; partitions: Array<{ start: number; size: number; type: string; bootable?: boolean }> } };
    expect(t.partitiontable.label).toBe('dos');
    expect(t.partitiontable.partitions).toHaveLength(1);
    expect(t.partitiontable.partitions[0]).toMatchObject({ start: 2048, type: '83', bootable: true });
    expect(2048 * 512 + t.partitiontable.partitions[0]!.size * 512).toBe(built.size);
    const probe = must('blkid', ['--probe', '--offset', String(MIB), '--output', 'export', built.image]);
    expect(probe).toMatch(/^LABEL=tips-root$/m);
    expect(probe).toMatch(/^TYPE=ext4$/m);
    // The MBR's boot code is syslinux's, and its signature is there.
    const head = readFileSync(built.image).subarray(0, 512);
    expect(head.subarray(0, 440).equals(readFileSync('/usr/lib/syslinux/mbr/mbr.bin').subarray(0, 440))).toBe(true);
    expect(head.readUInt16LE(510)).toBe(0xaa55);
  });

  it("its envelope is signed by the owner's key and binds exactly the image's SHA-256 (and no other)", () => {
    const envelope = new Uint8Array(readFileSync(built.envelope));
    const pem = must('openssl', ['pkey', '-in', join(work, 'owner.pem'), '-pubout']);
    const trust = [{ ...importKey(pem), name: 'owner' }];
    expect(() => verifyGlazeBinding(envelope, built.sha256, { trust })).not.toThrow();
    expect(must('sha256sum', [built.image]).split(' ')[0]).toBe(built.sha256);
    expect(() => verifyGlazeBinding(envelope, 'f'.repeat(64), { trust })).toThrow(/image-digest/);
    const other = join(work, 'other.pem');
    must('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', other]);
    expect(() => verifyGlazeBinding(envelope, built.sha256, { trust: [{ ...importKey(must('openssl', ['pkey', '-in', other, '-pubout'])), name: 'other' }] })).toThrow();
  });
  // Booting this image from its disk (extlinux, Debian's kernel, systemd, DHCP, TIPS-C enrolling on
  // first boot, login on ttyS0) is proven where the installer wrote it: e2e/phase1-qemu.test.ts. A
  // second qemu boot here took 90 s of CI for no check that one does not make.
});
