// The Phase 1 image on its own (T13): `tips glaze build-phase1` makes a disk image from Debian's
// archive (mmdebstrap, cached), the image's manifest is signed by the owner's key and binds its bytes,
// and qemu (real SeaBIOS, extlinux, Debian's kernel and systemd) boots it from its disk: DHCP, the
// first-boot TIPS-C unit enrolls with a real tips-master over EST, and the console reaches login.
// The TIPS-C files are written into the image the way the installer does (CONTRACT A6/B); the
// metal reaches the master through qemu's user-mode network (10.0.2.2 is the host's loopback).
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { importKey, verifyGlazeBinding } from '@tips/suit';
import { QemuMetal, stripTerminal } from '@tips/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningMaster, startMaster, TIPS } from './helpers.ts';
import { withImagePartition } from './phase1-fixtures.ts';

const ADMIN = `tips_${randomBytes(24).toString('base64url')}`;
const MIB = 1024 * 1024;
let work: string;
let master: RunningMaster;
let built: { image: string; envelope: string; size: number; sha256: string; sequence: number; kernel: string; seconds: { total: number } };

function must(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} → ${r.status}\n${r.stderr}`);
  return r.stdout;
}

async function api<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${master.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status >= 400) throw new Error(`${method} ${path} → ${res.status} ${text}`);
  return (text ? JSON.parse(text) : {}) as T;
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
  master = await startMaster(['--data-dir', join(work, 'data'), '--tls-port', '0', '--tls-hostname', '10.0.2.2'], { TIPS_BOOTSTRAP_ADMIN_TOKEN: ADMIN });
  const r = await tipsAsync(['glaze', 'build-phase1', '--name', 'base-os', '--version', '1.0', '--sequence', '7', '--sign-key', join(work, 'owner.pem'), '--out', join(work, 'out'), '--json']);
  if (r.code !== 0) throw new Error(`build-phase1 exited ${r.code}:\n${r.stderr.slice(-4000)}`);
  built = JSON.parse(r.stdout);
}, 1_800_000);

afterAll(async () => {
  await master?.stop();
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

  it(
    'boots from its disk in qemu: extlinux, Debian kernel, systemd, DHCP; TIPS-C enrolls with the real master on first boot; login on ttyS0',
    async () => {
      const mac = '02:71:70:73:00:01';
      const metal = await api<{ id: string; tipsId?: string }>('POST', '/api/v1/metals', { name: 'qemu-01', interfaces: [{ name: 'eth0', mac, type: 'ethernet', pxe: true }] });
      const secret = await api<{ id: string; secret: string }>('POST', '/api/v1/enrollment/secrets', { metal: metal.id });
      const ca = await api<{ rootPem: string; intermediatePem: string }>('GET', '/api/v1/enrollment/ca');
      const tlsPort = Number(/TLS listening on \S+:(\d+)/.exec(master.output())![1]);
      const masterUrl = `https://10.0.2.2:${tlsPort}`;
      // The disk is a copy: what the installer would have written, then the TIPS-C files it adds.
      const disk = join(work, 'disk.img');
      must('cp', ['--sparse=always', built.image, disk]);
      // The image's own kernel tells whether KVM really runs a guest on this machine (else TCG).
      const probeKernel = join(work, 'probe-vmlinuz');
      await withImagePartition(disk, (root) => {
        copyFileSync(join(root, 'boot', `vmlinuz-${built.kernel}`), probeKernel);
        const dir = join(root, 'etc/tips-client');
        const put = (name: string, data: string, mode: number) => {
          writeFileSync(join(dir, `${name}.tmp`), data, { mode });
          chmodSync(join(dir, `${name}.tmp`), mode);
          renameSync(join(dir, `${name}.tmp`), join(dir, name));
        };
        mkdirSync(dir, { recursive: true });
        put('ca.pem', ca.rootPem, 0o644);
        put('enrollment.json', JSON.stringify({ secretId: secret.id, secret: secret.secret }), 0o600);
        put(
          'config.json',
          JSON.stringify({
            masterUrl,
            estUrl: `${masterUrl}/.well-known/est`,
            caFile: '/etc/tips-client/ca.pem',
            tipsId: metal.tipsId ?? metal.id,
            metalId: metal.id,
            enrollmentFile: '/etc/tips-client/enrollment.json',
            stateDir: '/var/lib/tips-client',
            vendorId: null,
            classId: null,
          }),
          0o644,
        );
      });
      const vm = await QemuMetal.start({ mac, disk: { file: disk }, bootOrder: 'c', workDir: work, label: 'qemu-01', probeKernel });
      try {
        const boot = 15 * 60_000;
        await vm.waitForSerial(/SYSLINUX 6\.04/, boot);
        await vm.waitForSerial(new RegExp(`Linux version ${built.kernel.replace(/[.+]/g, '\\$&')}`), boot);
        await vm.waitForSerial(/Started .*systemd-networkd\.service/, boot);
        await vm.waitForSerial(/Starting .*tips-client-enrol/, boot);
        await vm.waitForSerial(/tips-metal login:/, boot);
        // TIPS-C's own words, on the console through the image's drop-in.
        await vm.waitForSerial(new RegExp(`enrolled: ${metal.id}, certificate [0-9a-f]+ valid until`), boot);
        const console = stripTerminal(vm.serial);
        expect(console).toContain('root=LABEL=tips-root');
        expect(console).not.toMatch(/Failed to start .*tips-client-enrol/);
      } finally {
        await vm.stop();
      }
      // The master issued the metal its certificate.
      const certs = await api<{ items: Array<{ serial: string }> }>('GET', `/api/v1/enrollment/certificates?metal=${metal.id}`);
      expect(certs.items).toHaveLength(1);
      // The enrollment secret left the disk once used (read after power-off).
      await withImagePartition(disk, (root) => {
        expect(existsSync(join(root, 'etc/tips-client/enrollment.json'))).toBe(false);
      });
    },
    40 * 60_000,
  );
});
