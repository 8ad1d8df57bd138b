import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  customizeRoot,
  DEFAULT_PACKAGES,
  ENROLL_UNIT,
  extlinuxConfig,
  mmdebstrapArgs,
  PARTITION_START_SECTOR,
  parseSize,
  partitionScript,
  pickKernel,
  planFilesystemBytes,
  type RootfsInputs,
  rootfsCacheKey,
} from './build-phase1.ts';

const ROOT = join(import.meta.dirname, '..', '..', '..', '..');
const BIN = join(ROOT, 'apps', 'cli', 'bin', 'tips.js');
const MIB = 1024 * 1024;
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tips-build-phase1-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function tips(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [BIN, 'glaze', 'build-phase1', ...args], { cwd: dir, encoding: 'utf8', env: { ...process.env, TIPS_CONFIG: join(dir, 'config.json') } });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

const inputs: RootfsInputs = { suite: 'bookworm', variant: 'minbase', mirror: 'http://deb.debian.org/debian', arch: 'amd64', packages: DEFAULT_PACKAGES };

describe('T13 Phase 1 image builder: the pure parts', () => {
  it('the rootfs cache key changes with every input and not with package order or duplicates', () => {
    const k = rootfsCacheKey(inputs);
    expect(k).toMatch(/^[0-9a-f]{64}$/);
    expect(rootfsCacheKey({ ...inputs, packages: [...DEFAULT_PACKAGES].reverse().concat('curl') })).toBe(k);
    for (const changed of [{ suite: 'trixie' }, { variant: 'important' as const }, { mirror: 'http://mirror.example/debian' }, { arch: 'arm64' }, { packages: [...DEFAULT_PACKAGES, 'vim'] }]) {
      expect(rootfsCacheKey({ ...inputs, ...changed })).not.toBe(k);
    }
  });

  it('mmdebstrap is asked for the suite, variant, packages and a tar at the given path', () => {
    const args = mmdebstrapArgs(inputs, '/c/x.tar');
    expect(args).toContain('--variant=minbase');
    expect(args).toContain('--format=tar');
    expect(args.slice(-3)).toEqual(['bookworm', '/c/x.tar', 'http://deb.debian.org/debian']);
    const include = args.find((a) => a.startsWith('--include='))!.slice('--include='.length).split(',');
    for (const p of ['linux-image-amd64', 'systemd-sysv', 'nodejs', 'ca-certificates', 'openssl', 'curl']) expect(include).toContain(p);
  });

  it('picks the newest kernel that has an initrd beside it', () => {
    expect(pickKernel(['config-6.1.0-9-amd64', 'vmlinuz-6.1.0-9-amd64', 'initrd.img-6.1.0-9-amd64', 'vmlinuz-6.1.0-10-amd64', 'initrd.img-6.1.0-10-amd64', 'vmlinuz-6.1.0-11-amd64'])).toEqual({
      version: '6.1.0-10-amd64',
      kernel: '/boot/vmlinuz-6.1.0-10-amd64',
      initrd: '/boot/initrd.img-6.1.0-10-amd64',
    });
    expect(pickKernel(['vmlinuz-6.1.0-11-amd64'])).toBeUndefined();
    expect(pickKernel([])).toBeUndefined();
  });

  it('the boot loader boots the root by its label with the serial console on ttyS0', () => {
    const c = extlinuxConfig({ kernel: '/boot/vmlinuz-6', initrd: '/boot/initrd.img-6' });
    expect(c).toMatch(/^SERIAL 0 115200$/m);
    expect(c).toMatch(/^ {2}LINUX \/boot\/vmlinuz-6$/m);
    expect(c).toMatch(/^ {2}INITRD \/boot\/initrd.img-6$/m);
    expect(c).toMatch(/^ {2}APPEND .*root=LABEL=tips-root .*console=ttyS0,115200n8/m);
  });

  it('sizes the filesystem with room to spare, in whole MiB, and refuses a --size too small', () => {
    const fs = planFilesystemBytes(700 * MIB);
    expect(fs % MIB).toBe(0);
    expect(fs).toBeGreaterThan(800 * MIB);
    expect(planFilesystemBytes(700 * MIB, 4096 * MIB)).toBe(4096 * MIB);
    expect(() => planFilesystemBytes(700 * MIB, 700 * MIB)).toThrow(/smaller than/);
    expect(parseSize('2G')).toBe(2048 * MIB);
    expect(parseSize('1536M')).toBe(1536 * MIB);
    expect(parseSize('1GiB')).toBe(1024 * MIB);
    expect(() => parseSize('two gigs')).toThrow(/--size/);
  });

  it('sfdisk (real) reads the script as one bootable Linux partition from 1 MiB to the end', () => {
    const img = join(dir, 'p.img');
    const fsBytes = 64 * MIB;
    writeFileSync(img, '');
    spawnSync('truncate', ['--size', String(PARTITION_START_SECTOR * 512 + fsBytes), img]);
    const w = spawnSync('sfdisk', ['--quiet', '--no-reread', '--no-tell-kernel', img], { input: partitionScript(fsBytes), encoding: 'utf8' });
    expect(w.status, w.stderr).toBe(0);
    const t = JSON.parse(spawnSync('sfdisk', ['--json', img], { encoding: 'utf8' }).stdout) as { partitiontable: { label: string; partitions: Array<{ start: number; size: number; type: string; bootable?: boolean }> } };
    expect(t.partitiontable.label).toBe('dos');
    expect(t.partitiontable.partitions).toEqual([expect.objectContaining({ start: 2048, size: fsBytes / 512, type: '83', bootable: true })]);
  });
});

describe('T13 Phase 1 image builder: the staged root gets TIPS-C, its units and DHCP', () => {
  function fakeRoot(): string {
    const root = mkdtempSync(join(dir, 'root-'));
    mkdirSync(join(root, 'boot'));
    for (const f of ['vmlinuz-6.1.0-50-amd64', 'initrd.img-6.1.0-50-amd64']) writeFileSync(join(root, 'boot', f), 'k');
    mkdirSync(join(root, 'usr/bin'), { recursive: true });
    writeFileSync(join(root, 'usr/bin/node'), '');
    mkdirSync(join(root, 'lib/systemd'), { recursive: true });
    writeFileSync(join(root, 'lib/systemd/systemd'), '');
    return root;
  }

  it('installs the bundle, the wrapper, both units enabled, networkd enabled, fstab by label, an empty machine-id', () => {
    const root = fakeRoot();
    const bundle = join(dir, 'bundle.cjs');
    writeFileSync(bundle, 'console.log("tips-client")');
    const k = customizeRoot(root, bundle, 'pi-07');
    expect(k.version).toBe('6.1.0-50-amd64');
    expect(readFileSync(join(root, 'usr/lib/tips-client/tips-client.cjs'), 'utf8')).toBe('console.log("tips-client")');
    expect(statSync(join(root, 'usr/bin/tips-client')).mode & 0o777).toBe(0o755);
    expect(readFileSync(join(root, 'usr/bin/tips-client'), 'utf8')).toContain('/usr/lib/tips-client/tips-client.cjs');
    const enroll = readFileSync(join(root, 'lib/systemd/system/tips-client-enroll.service'), 'utf8');
    expect(enroll).toBe(ENROLL_UNIT);
    expect(enroll).toMatch(/^Type=oneshot$/m);
    expect(enroll).toMatch(/^After=network-online.target$/m);
    expect(enroll).toMatch(/^ExecStart=\/usr\/bin\/tips-client enroll --config \/etc\/tips-client\/config.json$/m);
    expect(existsSync(join(root, 'lib/systemd/system/tips-client.service'))).toBe(true);
    expect(readFileSync(join(root, 'etc/systemd/system/tips-client-enroll.service.d/console.conf'), 'utf8')).toMatch(/^StandardOutput=journal\+console$/m);
    for (const [wants, unit] of [
      ['multi-user.target.wants', 'tips-client-enroll.service'],
      ['multi-user.target.wants', 'tips-client.service'],
      ['multi-user.target.wants', 'systemd-networkd.service'],
      ['network-online.target.wants', 'systemd-networkd-wait-online.service'],
    ]) {
      const link = join(root, 'etc/systemd/system', wants!, unit!);
      expect(lstatSync(link).isSymbolicLink()).toBe(true);
      expect(readlinkSync(link)).toBe(`/lib/systemd/system/${unit}`);
    }
    expect(readFileSync(join(root, 'etc/systemd/network/80-tips-dhcp.network'), 'utf8')).toMatch(/Type=ether[\s\S]*DHCP=yes/);
    expect(readFileSync(join(root, 'etc/fstab'), 'utf8')).toMatch(/^LABEL=tips-root \/ ext4 /m);
    expect(readFileSync(join(root, 'etc/machine-id'), 'utf8')).toBe('');
    expect(readFileSync(join(root, 'etc/hostname'), 'utf8')).toBe('pi-07\n');
    expect(readFileSync(join(root, 'boot/extlinux/extlinux.conf'), 'utf8')).toContain('LINUX /boot/vmlinuz-6.1.0-50-amd64');
    // Run twice (a rebuild over the same staging) without failing on existing links.
    expect(() => customizeRoot(root, bundle, 'pi-07')).not.toThrow();
  });

  it('refuses a root without a kernel or without node, naming what is missing', () => {
    const noKernel = fakeRoot();
    rmSync(join(noKernel, 'boot'), { recursive: true });
    expect(() => customizeRoot(noKernel, join(dir, 'bundle.cjs'), 'x')).toThrow(/no kernel/);
    const noNode = fakeRoot();
    rmSync(join(noNode, 'usr/bin/node'));
    expect(() => customizeRoot(noNode, join(dir, 'bundle.cjs'), 'x')).toThrow(/\/usr\/bin\/node/);
    expect(existsSync(join(noNode, 'usr/lib/tips-client'))).toBe(false);
  });
});

describe('T13 tips glaze build-phase1: refusals come before the build', () => {
  it('has --help naming every input', () => {
    const r = tips('--help');
    expect(r.code).toBe(0);
    for (const o of ['--push', '--out', '--rootfs-dir', '--rootfs-tar', '--client-bundle', '--sign-key', '--sequence', '--version', '--json']) expect(r.out).toContain(o);
  });

  it('without a client bundle it fails with a clear message and builds nothing', () => {
    const key = join(dir, 'k.pem');
    spawnSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key]);
    const out = join(dir, 'out-missing');
    const r = tips('--name', 'base-os', '--sign-key', key, '--out', out, '--client-bundle', join(dir, 'no-such.cjs'));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^error: client_bundle_missing: .*no-such\.cjs/);
    expect(existsSync(out)).toBe(false);
  });

  it('refuses missing --push/--out, both rootfs sources, a bad variant or sequence, an unreadable key', () => {
    const key = join(dir, 'k.pem');
    expect(tips('--name', 'a', '--sign-key', key).err).toMatch(/give --push .* or --out/);
    expect(tips('--name', 'a', '--sign-key', key, '--out', dir, '--rootfs-dir', dir, '--rootfs-tar', key).err).toMatch(/not both/);
    expect(tips('--name', 'a', '--sign-key', key, '--out', dir, '--variant', 'buildd').err).toMatch(/--variant/);
    expect(tips('--name', 'a', '--sign-key', key, '--out', dir, '--sequence', '-1').err).toMatch(/--sequence/);
    const bad = tips('--name', 'a', '--sign-key', join(dir, 'nope.pem'), '--out', dir);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/nope\.pem/);
  });
});

describe('T13 tips glaze build-phase1: where the TIPS-C bundle and its units come from', () => {
  it("installs the client's own units when the bundle is in a TIPS-C tree (apps/client/dist beside apps/client/debian)", () => {
    const client = join(ROOT, 'apps/client');
    const root = mkdtempSync(join(dir, 'root-units-'));
    mkdirSync(join(root, 'boot'));
    for (const f of ['vmlinuz-6.1.0-50-amd64', 'initrd.img-6.1.0-50-amd64']) writeFileSync(join(root, 'boot', f), 'k');
    mkdirSync(join(root, 'usr/bin'), { recursive: true });
    writeFileSync(join(root, 'usr/bin/node'), '');
    mkdirSync(join(root, 'lib/systemd'), { recursive: true });
    writeFileSync(join(root, 'lib/systemd/systemd'), '');
    const fakeTree = join(dir, 'client-tree');
    mkdirSync(join(fakeTree, 'dist'), { recursive: true });
    mkdirSync(join(fakeTree, 'debian'), { recursive: true });
    writeFileSync(join(fakeTree, 'dist/tips-client.cjs'), '');
    for (const u of ['tips-client-enroll.service', 'tips-client.service']) writeFileSync(join(fakeTree, 'debian', u), readFileSync(join(client, 'debian', u)));
    customizeRoot(root, join(fakeTree, 'dist/tips-client.cjs'), 'x');
    for (const u of ['tips-client-enroll.service', 'tips-client.service']) expect(readFileSync(join(root, 'lib/systemd/system', u), 'utf8')).toBe(readFileSync(join(client, 'debian', u), 'utf8'));
  });

  it('finds apps/client/dist/tips-client.cjs in a directory above, and nothing when there is none', async () => {
    const { findClientBundle } = await import('./build-phase1.ts');
    const repo = mkdtempSync(join(dir, 'repo-'));
    mkdirSync(join(repo, 'apps/client/dist'), { recursive: true });
    mkdirSync(join(repo, 'apps/cli/src/commands'), { recursive: true });
    expect(findClientBundle(join(repo, 'apps/cli/src/commands'))).toBeUndefined();
    writeFileSync(join(repo, 'apps/client/dist/tips-client.cjs'), '');
    expect(findClientBundle(join(repo, 'apps/cli/src/commands'))).toBe(join(repo, 'apps/client/dist/tips-client.cjs'));
  });
});
