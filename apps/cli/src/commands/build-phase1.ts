// `tips glaze build-phase1`: a bootable raw disk image for Phase 1 (CONTRACT A6) — MBR, partition 1
// an ext4 root filesystem labelled `tips-root`, extlinux — made from a Debian root filesystem
// (mmdebstrap from Debian's archive, cached by the hash of its inputs, or a directory or tar the user
// gives), with the TIPS-C agent and its units installed (CONTRACT B), its SUIT manifest signed by the
// owner's key, then pushed as a Glaze or written to a directory.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  copyFileSync,
  createReadStream,
  existsSync,
  fsyncSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { suit } from '../suit-lib.ts';
import { loadConfig } from '../config.ts';
import { action, api, collect, jsonOption } from '../context.ts';
import { CliError, EXIT } from '../errors.ts';
import { bytes, print } from '../output.ts';
import type { GlazeOut } from './glaze.ts';
import { readSigningKey, sendBytes } from './identity.ts';

/** Bumped whenever what mmdebstrap is asked for changes meaning, so old cached tars are not reused. */
export const ROOTFS_RECIPE = 'tips-phase1-rootfs/1';
export const ROOT_LABEL = 'tips-root';
/** The partition starts at 1 MiB: the installer writes the first MiB last (CONTRACT A6). */
export const PARTITION_START_SECTOR = 2048;
const MIB = 1024 * 1024;

export const DEFAULT_PACKAGES = ['linux-image-amd64', 'systemd-sysv', 'udev', 'nodejs', 'ca-certificates', 'openssl', 'curl', 'iproute2'];

/** Documentation, manual pages and translations are not needed on a metal; they are a third of a minbase. */
export const DPKG_EXCLUDES = [
  'path-exclude=/usr/share/doc/*',
  'path-include=/usr/share/doc/*/copyright',
  'path-exclude=/usr/share/man/*',
  'path-exclude=/usr/share/info/*',
  'path-exclude=/usr/share/locale/*',
  'path-include=/usr/share/locale/locale.alias',
];

export interface RootfsInputs {
  suite: string;
  variant: 'minbase' | 'important';
  mirror: string;
  arch: string;
  packages: string[];
}

/** The cache key of an mmdebstrap root filesystem: every input that changes its bytes. */
export function rootfsCacheKey(inputs: RootfsInputs): string {
  const canonical = JSON.stringify({
    recipe: ROOTFS_RECIPE,
    suite: inputs.suite,
    variant: inputs.variant,
    mirror: inputs.mirror,
    arch: inputs.arch,
    packages: [...new Set(inputs.packages)].sort(),
    dpkg: DPKG_EXCLUDES,
  });
  return createHash('sha256').update(canonical).digest('hex');
}

export function mmdebstrapArgs(inputs: RootfsInputs, outTar: string): string[] {
  return [
    '--mode=root',
    `--variant=${inputs.variant}`,
    `--architectures=${inputs.arch}`,
    '--format=tar',
    `--include=${[...new Set(inputs.packages)].sort().join(',')}`,
    ...DPKG_EXCLUDES.map((o) => `--dpkgopt=${o}`),
    inputs.suite,
    outTar,
    inputs.mirror,
  ];
}

export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.TIPS_CACHE_DIR || join(homedir(), '.cache', 'tips');
}

/** The newest kernel in /boot that has an initrd beside it (Debian names: vmlinuz-V, initrd.img-V). */
export function pickKernel(bootEntries: string[]): { version: string; kernel: string; initrd: string } | undefined {
  const versions = bootEntries
    .map((e) => /^vmlinuz-(.+)$/.exec(e)?.[1])
    .filter((v): v is string => v !== undefined && bootEntries.includes(`initrd.img-${v}`))
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const version = versions.at(-1);
  return version ? { version, kernel: `/boot/vmlinuz-${version}`, initrd: `/boot/initrd.img-${version}` } : undefined;
}

export const KERNEL_CMDLINE = `root=LABEL=${ROOT_LABEL} ro console=tty0 console=ttyS0,115200n8`;

/** extlinux's configuration: serial console on ttyS0 too, so the boot loader is seen on a headless metal. */
export function extlinuxConfig(k: { kernel: string; initrd: string }): string {
  return [
    'SERIAL 0 115200',
    'DEFAULT tips',
    'TIMEOUT 10',
    'PROMPT 0',
    'LABEL tips',
    '  MENU LABEL TIPS Phase 1 system',
    `  LINUX ${k.kernel}`,
    `  INITRD ${k.initrd}`,
    `  APPEND ${KERNEL_CMDLINE}`,
    '',
  ].join('\n');
}

/** DHCP on every ethernet (systemd-networkd); the client identifier is the MAC, as the gateway's lease table keys it. */
export const NETWORK_UNIT = `# Written by tips glaze build-phase1: DHCP on every ethernet interface.
[Match]
Type=ether

[Network]
DHCP=yes

[DHCPv4]
ClientIdentifier=mac
`;

export const CLIENT_WRAPPER = `#!/bin/sh
# TIPS-C, the TIPS agent (one Node.js bundle; Debian's nodejs runs it).
exec /usr/bin/node /usr/lib/tips-client/tips-client.cjs "$@"
`;

/**
 * The units TIPS-C ships (apps/client/debian/) are used when they are beside the bundle; these are for a
 * `--client-bundle` from elsewhere. First boot: enroll with the master. The installer writes
 * enrollment.json; the client removes it once enrolled, so the unit runs until enrollment succeeded
 * and never after.
 */
export const ENROLL_UNIT = `[Unit]
Description=TIPS-C: enroll this metal with its TIPS master (first boot)
Wants=network-online.target
After=network-online.target
ConditionPathExists=/etc/tips-client/config.json
ConditionPathExists=/etc/tips-client/enrollment.json

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/bin/tips-client enroll --config /etc/tips-client/config.json
Restart=on-failure
RestartSec=10s

[Install]
WantedBy=multi-user.target
`;

export const AGENT_UNIT = `[Unit]
Description=TIPS-C: the TIPS agent (Phases 2 and 3)
Wants=network-online.target
After=network-online.target tips-client-enroll.service
ConditionPathExists=/etc/tips-client/config.json

[Service]
ExecStart=/usr/bin/tips-client run --config /etc/tips-client/config.json
Restart=always
RestartSec=10s

[Install]
WantedBy=multi-user.target
`;

/** Enrollment also tells the console: a metal without a screen still says on its serial line that it enrolled or why not. */
export const ENROLL_CONSOLE_DROPIN = `# Written by tips glaze build-phase1.
[Service]
StandardOutput=journal+console
StandardError=journal+console
`;

/** The client's own units, when the bundle sits in a TIPS-C tree (apps/client/dist → apps/client/debian). */
export function findClientUnits(bundle: string): { enroll: string; agent: string } | undefined {
  const dir = join(dirname(resolve(bundle)), '..', 'debian');
  const enroll = join(dir, 'tips-client-enroll.service');
  const agent = join(dir, 'tips-client.service');
  return existsSync(enroll) && existsSync(agent) ? { enroll: readFileSync(enroll, 'utf8'), agent: readFileSync(agent, 'utf8') } : undefined;
}

export const FSTAB = `# Written by tips glaze build-phase1.
LABEL=${ROOT_LABEL} / ext4 errors=remount-ro 0 1
`;

/** The filesystem size for a root of `usedBytes`: room for logs and TIPS-C state, in whole MiB. */
export function planFilesystemBytes(usedBytes: number, requested?: number): number {
  const need = Math.ceil((usedBytes * 1.15 + 160 * MIB) / MIB) * MIB;
  if (requested === undefined) return need;
  if (requested < need) throw new CliError('size_too_small', `--size ${bytes(requested)} is smaller than the ${bytes(need)} this root filesystem needs`, EXIT.usage, 'size');
  return Math.ceil(requested / MIB) * MIB;
}

/** sfdisk's script for the MBR: one bootable Linux partition from 1 MiB to the end of the image. */
export function partitionScript(filesystemBytes: number): string {
  return `label: dos\nunit: sectors\n\nstart=${PARTITION_START_SECTOR}, size=${filesystemBytes / 512}, type=83, bootable\n`;
}

/** `--size` values: bytes, or a number with K/M/G (binary). */
export function parseSize(v: string): number {
  const m = /^(\d+)([KMG]i?B?)?$/i.exec(v.trim());
  if (!m) throw new CliError('bad_option', `--size "${v}" must be a size such as 2G or 1536M`, EXIT.usage, 'size');
  const unit = (m[2] ?? '').toUpperCase()[0];
  const mult = unit === 'K' ? 1024 : unit === 'M' ? MIB : unit === 'G' ? 1024 * MIB : 1;
  return Number(m[1]) * mult;
}

// ---------------------------------------------------------------------------------------------------
// Side effects

type Log = (msg: string) => void;

interface Exec {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command (no shell); its stderr is kept (and echoed when `echo`), stdout returned. */
function exec(cmd: string, args: string[], opts: { input?: string; echo?: boolean; cwd?: string } = {}): Promise<Exec> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], cwd: opts.cwd });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d) => {
      stdout += d;
      if (opts.echo) process.stderr.write(d);
    });
    child.stderr?.on('data', (d) => {
      stderr = (stderr + d).slice(-64 * 1024);
      if (opts.echo) process.stderr.write(d);
    });
    child.on('error', (e) => reject(new CliError('tool_missing', `cannot run ${cmd}: ${e.message}`, EXIT.failure)));
    child.on('close', (code) => resolvePromise({ code: code ?? -1, stdout, stderr }));
    if (opts.input !== undefined) {
      // A tool that exits without reading its input must not crash the build (EPIPE).
      child.stdin?.on('error', () => undefined);
      child.stdin?.end(opts.input);
    }
  });
}

async function execOk(cmd: string, args: string[], opts: { input?: string; echo?: boolean; cwd?: string } = {}): Promise<Exec> {
  const r = await exec(cmd, args, opts);
  if (r.code !== 0) throw new CliError('build_failed', `${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr.trim().split('\n').slice(-6).join(' | ')}`, EXIT.failure);
  return r;
}

/** The tools the build runs, with the Debian package that has each. */
const TOOLS: Array<[string, string, 'mmdebstrap' | 'always']> = [
  ['mmdebstrap', 'mmdebstrap', 'mmdebstrap'],
  ['mke2fs', 'e2fsprogs', 'always'],
  ['sfdisk', 'fdisk', 'always'],
  ['extlinux', 'extlinux', 'always'],
  ['losetup', 'mount', 'always'],
  ['partx', 'util-linux', 'always'],
  ['mount', 'mount', 'always'],
  ['tar', 'tar', 'always'],
];
export const MBR_BIN_CANDIDATES = ['/usr/lib/syslinux/mbr/mbr.bin', '/usr/lib/EXTLINUX/mbr.bin'];

async function checkTools(mmdebstrap: boolean): Promise<string> {
  const missing: string[] = [];
  for (const [tool, pkg, when] of TOOLS) {
    if (when === 'mmdebstrap' && !mmdebstrap) continue;
    const r = await exec('sh', ['-c', `command -v ${tool}`]);
    if (r.code !== 0) missing.push(`${tool} (Debian package ${pkg})`);
  }
  const mbr = MBR_BIN_CANDIDATES.find((p) => existsSync(p));
  if (!mbr) missing.push('mbr.bin (Debian package syslinux-common)');
  if (missing.length) throw new CliError('tool_missing', `missing: ${missing.join(', ')} — apt-get install them`, EXIT.failure);
  if (process.getuid?.() !== 0) throw new CliError('not_root', 'build-phase1 must run as root: it mounts the image through a loop device to install extlinux (and mmdebstrap --mode=root needs root)', EXIT.failure);
  return mbr!;
}

function fsyncPath(p: string): void {
  const fd = openSync(p, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** An mmdebstrap root filesystem from the cache, or built into it (temp file + fsync + rename). */
async function cachedRootfs(inputs: RootfsInputs, log: Log): Promise<{ tar: string; cached: boolean; key: string }> {
  const key = rootfsCacheKey(inputs);
  const dir = join(cacheDir(), 'rootfs');
  const tar = join(dir, `${key}.tar`);
  if (existsSync(tar)) {
    log(`root filesystem: cached ${tar}`);
    return { tar, cached: true, key };
  }
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${key}.${process.pid}.tmp.tar`);
  log(`root filesystem: mmdebstrap ${inputs.suite} (${inputs.variant}, ${inputs.packages.length} packages) from ${inputs.mirror} — a few minutes`);
  try {
    await execOk('mmdebstrap', mmdebstrapArgs(inputs, tmp), { echo: true });
    fsyncPath(tmp);
    renameSync(tmp, tar);
    fsyncPath(dir);
  } finally {
    rmSync(tmp, { force: true });
  }
  return { tar, cached: false, key };
}

/** The repository's TIPS-C bundle (apps/client/dist/tips-client.cjs), found from where this CLI runs. */
export function findClientBundle(from = import.meta.dirname): string | undefined {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'apps/client/dist/tips-client.cjs');
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}

function writeFile(path: string, data: string, mode = 0o644): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, data, { mode });
  chmodSync(path, mode);
}

function linkUnit(root: string, target: string, wants: string, unit: string): void {
  const dir = join(root, 'etc/systemd/system', `${target}.wants`);
  mkdirSync(dir, { recursive: true });
  rmSync(join(dir, unit), { force: true });
  symlinkSync(`/lib/systemd/system/${unit}`, join(dir, wants));
}

/** Makes the staged root a TIPS Phase 1 system: fstab, boot loader config, DHCP, TIPS-C and its units. */
export function customizeRoot(root: string, clientBundle: string, hostname: string): { kernel: string; initrd: string; version: string } {
  const k = pickKernel(existsSync(join(root, 'boot')) ? readdirSync(join(root, 'boot')) : []);
  if (!k) throw new CliError('no_kernel', 'the root filesystem has no kernel: /boot needs vmlinuz-<version> and initrd.img-<version> (install linux-image-amd64 in it)', EXIT.invalid);
  for (const bin of ['usr/bin/node', 'lib/systemd/systemd']) {
    if (!existsSync(join(root, bin))) throw new CliError('rootfs_incomplete', `the root filesystem has no /${bin} (TIPS-C needs nodejs and systemd-sysv)`, EXIT.invalid);
  }
  writeFile(join(root, 'etc/fstab'), FSTAB);
  writeFile(join(root, 'etc/hostname'), `${hostname}\n`);
  // An empty machine-id: systemd makes a fresh one on first boot, so no two metals share one.
  writeFile(join(root, 'etc/machine-id'), '', 0o444);
  writeFile(join(root, 'boot/extlinux/extlinux.conf'), extlinuxConfig(k));
  writeFile(join(root, 'etc/systemd/network/80-tips-dhcp.network'), NETWORK_UNIT);
  mkdirSync(join(root, 'usr/lib/tips-client'), { recursive: true });
  copyFileSync(clientBundle, join(root, 'usr/lib/tips-client/tips-client.cjs'));
  chmodSync(join(root, 'usr/lib/tips-client/tips-client.cjs'), 0o644);
  writeFile(join(root, 'usr/bin/tips-client'), CLIENT_WRAPPER, 0o755);
  mkdirSync(join(root, 'etc/tips-client'), { recursive: true, mode: 0o755 });
  mkdirSync(join(root, 'var/lib/tips-client'), { recursive: true, mode: 0o700 });
  const units = findClientUnits(clientBundle) ?? { enroll: ENROLL_UNIT, agent: AGENT_UNIT };
  writeFile(join(root, 'lib/systemd/system/tips-client-enroll.service'), units.enroll);
  writeFile(join(root, 'lib/systemd/system/tips-client.service'), units.agent);
  writeFile(join(root, 'etc/systemd/system/tips-client-enroll.service.d/console.conf'), ENROLL_CONSOLE_DROPIN);
  // What `systemctl enable` would link (done by hand: the host's systemctl may not match the root's).
  linkUnit(root, 'multi-user.target', 'tips-client-enroll.service', 'tips-client-enroll.service');
  linkUnit(root, 'multi-user.target', 'tips-client.service', 'tips-client.service');
  linkUnit(root, 'multi-user.target', 'systemd-networkd.service', 'systemd-networkd.service');
  linkUnit(root, 'sockets.target', 'systemd-networkd.socket', 'systemd-networkd.socket');
  linkUnit(root, 'network-online.target', 'systemd-networkd-wait-online.service', 'systemd-networkd-wait-online.service');
  rmSync(join(root, 'etc/systemd/system/dbus-org.freedesktop.network1.service'), { force: true });
  symlinkSync('/lib/systemd/system/systemd-networkd.service', join(root, 'etc/systemd/system/dbus-org.freedesktop.network1.service'));
  return k;
}

async function duBytes(dir: string): Promise<number> {
  const r = await execOk('du', ['-s', '-x', '--block-size=1', dir]);
  return Number(r.stdout.split(/\s/)[0]);
}

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 4 * MIB })) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Copies the MBR boot code (440 bytes) into the image without touching the partition table. */
function writeMbrCode(image: string, mbrBin: string): void {
  const code = readFileSync(mbrBin).subarray(0, 440);
  const fd = openSync(image, 'r+');
  try {
    writeSync(fd, code, 0, code.length, 0);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

async function waitForPath(p: string, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!existsSync(p)) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

/**
 * extlinux writes its boot sector with the partition's offset, which it reads from the kernel, so it
 * runs on the partition of a loop device over the whole image (partx, not an offset loop).
 */
async function installExtlinux(image: string, work: string, log: Log): Promise<void> {
  const loop = (await execOk('losetup', ['--find', '--show', '--partscan', image])).stdout.trim();
  const part = `${loop}p1`;
  const mnt = join(work, 'mnt');
  mkdirSync(mnt, { recursive: true });
  let mounted = false;
  try {
    if (!(await waitForPath(part, 2000))) {
      await execOk('partx', ['--add', '--nr', '1', loop]);
      if (!(await waitForPath(part, 5000))) throw new CliError('build_failed', `the kernel made no ${part} for the image's partition`, EXIT.failure);
    }
    await execOk('mount', ['-t', 'ext4', part, mnt]);
    mounted = true;
    log(`boot loader: extlinux --install /boot/extlinux (through ${part})`);
    await execOk('extlinux', ['--install', join(mnt, 'boot/extlinux')]);
    await execOk('sync', ['-f', mnt]);
  } finally {
    if (mounted) await exec('umount', [mnt]);
    // extlinux writes its boot sector through the partition's block device: those pages must reach the
    // image file before it is hashed, not whenever the kernel's writeback gets to them.
    await exec('blockdev', ['--flushbufs', part]);
    await exec('blockdev', ['--flushbufs', loop]);
    await exec('partx', ['--delete', loop]);
    await exec('losetup', ['--detach', loop]);
  }
  // A busy loop device is detached lazily (at last close): wait until the image is no loop's backing file.
  const end = Date.now() + 30_000;
  while ((await exec('losetup', ['--associated', image])).stdout.trim() !== '') {
    if (Date.now() > end) throw new CliError('build_failed', `the loop device over ${image} did not go away`, EXIT.failure);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export interface BuildOptions {
  rootfsDir?: string;
  rootfsTar?: string;
  suite: string;
  variant: 'minbase' | 'important';
  mirror: string;
  packages: string[];
  clientBundle: string;
  hostname: string;
  size?: number;
  output: string;
  workDir?: string;
}

export interface BuildResult {
  image: string;
  size: number;
  sha256: string;
  kernel: string;
  rootfs: { source: 'mmdebstrap' | 'dir' | 'tar'; path: string; cached?: boolean; cacheKey?: string };
  filesystemBytes: number;
  seconds: { rootfs: number; image: number };
}

/** Builds the raw disk image at `opts.output` (temp + fsync + rename). */
export async function buildPhase1Image(opts: BuildOptions, log: Log): Promise<BuildResult> {
  const t0 = Date.now();
  const mbrBin = await checkTools(!opts.rootfsDir && !opts.rootfsTar);
  let rootfs: BuildResult['rootfs'];
  let tar: string | undefined;
  if (opts.rootfsDir) {
    if (!statSync(opts.rootfsDir, { throwIfNoEntry: false })?.isDirectory()) throw new CliError('bad_option', `--rootfs-dir ${opts.rootfsDir} is not a directory`, EXIT.usage, 'rootfs-dir');
    rootfs = { source: 'dir', path: resolve(opts.rootfsDir) };
  } else if (opts.rootfsTar) {
    if (!statSync(opts.rootfsTar, { throwIfNoEntry: false })?.isFile()) throw new CliError('bad_option', `--rootfs-tar ${opts.rootfsTar} is not a file`, EXIT.usage, 'rootfs-tar');
    tar = resolve(opts.rootfsTar);
    rootfs = { source: 'tar', path: tar };
  } else {
    const r = await cachedRootfs({ suite: opts.suite, variant: opts.variant, mirror: opts.mirror, arch: 'amd64', packages: opts.packages }, log);
    tar = r.tar;
    rootfs = { source: 'mmdebstrap', path: r.tar, cached: r.cached, cacheKey: r.key };
  }
  const t1 = Date.now();
  const work = mkdtempSync(join(opts.workDir ?? tmpdir(), 'tips-phase1-'));
  const outTmp = `${opts.output}.${process.pid}.tmp`;
  try {
    const stage = join(work, 'root');
    mkdirSync(stage);
    if (tar) {
      log(`staging: unpacking ${basename(tar)}`);
      await execOk('tar', ['--extract', '--file', tar, '--directory', stage, '--numeric-owner', '--same-permissions', '--xattrs', '--xattrs-include=*']);
    } else {
      log(`staging: copying ${opts.rootfsDir}`);
      await execOk('cp', ['-a', '--one-file-system', `${resolve(opts.rootfsDir!)}/.`, stage]);
    }
    const k = customizeRoot(stage, opts.clientBundle, opts.hostname);
    const fsBytes = planFilesystemBytes(await duBytes(stage), opts.size === undefined ? undefined : opts.size - PARTITION_START_SECTOR * 512);
    const fsFile = join(work, 'root.ext4');
    log(`filesystem: ext4 "${ROOT_LABEL}", ${bytes(fsBytes)}, kernel ${k.version}`);
    // No 64bit feature: extlinux 6.04 cannot load its second stage from a 64-bit ext4.
    await execOk('mke2fs', ['-q', '-F', '-t', 'ext4', '-L', ROOT_LABEL, '-O', '^64bit', '-E', 'root_owner=0:0', '-d', stage, fsFile, `${fsBytes / 1024}k`]);
    rmSync(stage, { recursive: true, force: true });
    log('disk: MBR, partition 1 at 1 MiB');
    writeFileSync(outTmp, '');
    await execOk('truncate', ['--size', String(PARTITION_START_SECTOR * 512 + fsBytes), outTmp]);
    await execOk('sfdisk', ['--quiet', '--no-reread', '--no-tell-kernel', outTmp], { input: partitionScript(fsBytes) });
    await execOk('dd', [`if=${fsFile}`, `of=${outTmp}`, 'bs=4M', `seek=${PARTITION_START_SECTOR * 512}`, 'oflag=seek_bytes', 'conv=notrunc,sparse,fsync', 'status=none']);
    rmSync(fsFile, { force: true });
    writeMbrCode(outTmp, mbrBin);
    await installExtlinux(outTmp, work, log);
    fsyncPath(outTmp);
    renameSync(outTmp, opts.output);
    fsyncPath(dirname(resolve(opts.output)));
    const size = statSync(opts.output).size;
    log(`image: ${opts.output} (${bytes(size)}), hashing`);
    const sha256 = await sha256File(opts.output);
    return { image: resolve(opts.output), size, sha256, kernel: k.version, rootfs, filesystemBytes: fsBytes, seconds: { rootfs: (t1 - t0) / 1000, image: (Date.now() - t1) / 1000 } };
  } finally {
    rmSync(outTmp, { force: true });
    rmSync(work, { recursive: true, force: true });
  }
}

function writeDurably(path: string, data: Uint8Array): void {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o644);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

const glazePath = (ref: string) => `api/v1/glazes/${encodeURIComponent(ref)}`;

interface CommandOpts {
  name: string;
  version: string;
  sequence?: string;
  signKey: string;
  push?: boolean;
  out?: string;
  space?: string[];
  rootfsDir?: string;
  rootfsTar?: string;
  suite: string;
  variant: string;
  mirror: string;
  include?: string[];
  clientBundle?: string;
  hostname: string;
  size?: string;
  vendorDomain: string;
  class?: string;
  json?: boolean;
}

export function registerBuildPhase1Command(glaze: Command): void {
  jsonOption(
    glaze
      .command('build-phase1')
      .description('build a bootable Phase 1 disk image (Debian root, extlinux, TIPS-C), sign its manifest, and push it (--push) or write it (--out)')
      .requiredOption('--name <name>', 'the Glaze name')
      .requiredOption('--sign-key <pem>', "the owner's private key that signs the SUIT manifest (registered with `tips key`)")
      .option('--version <version>', 'the Glaze version label (`<name>@<version>`; also in the manifest text)', '1.0')
      .option('--sequence <n>', 'manifest sequence number (installers refuse a lower one than installed); default: the current UTC time in seconds')
      .option('--push', 'upload the image as a Glaze and attach the signed manifest')
      .option('--space <space>', 'with --push: a Space allowed to use the Glaze (repeatable)', collect)
      .option('--out <dir>', 'write <name>-<version>.img and .suit (the signed envelope) here')
      .option('--rootfs-dir <dir>', 'use this root filesystem directory instead of mmdebstrap (it is copied, never changed)')
      .option('--rootfs-tar <file>', 'use this root filesystem tar instead of mmdebstrap')
      .option('--suite <suite>', 'Debian suite for mmdebstrap', 'bookworm')
      .option('--variant <variant>', 'mmdebstrap variant: minbase or important', 'minbase')
      .option('--mirror <url>', 'Debian mirror for mmdebstrap', 'http://deb.debian.org/debian')
      .option('--include <pkg>', 'an extra Debian package in the root filesystem (repeatable)', collect)
      .option('--client-bundle <file>', 'the TIPS-C bundle to install; default: apps/client/dist/tips-client.cjs of this repository')
      .option('--hostname <name>', 'the installed system’s host name', 'tips-metal')
      .option('--size <size>', 'the image size (e.g. 2G); default: what the root filesystem needs plus room')
      .option('--vendor-domain <domain>', 'vendor domain (vendor ID = UUID5(DNS, domain))', 'tips.local')
      .option('--class <info>', 'class info (class ID = UUID5(vendor ID, info)); default: the Glaze name')
      .addHelpText(
        'after',
        `\nNeeds root and Debian packages mmdebstrap, e2fsprogs, fdisk, extlinux, syslinux-common. Root filesystems made by mmdebstrap are cached in \${TIPS_CACHE_DIR:-~/.cache/tips}/rootfs/<sha256 of the inputs>.tar. Progress goes to stderr.`,
      ),
  ).action(
    action(async (opts: CommandOpts) => {
      if (!opts.push && !opts.out) throw new CliError('bad_option', 'give --push (upload as a Glaze) or --out <dir> (write the image and its envelope)', EXIT.usage, 'out');
      if (opts.rootfsDir && opts.rootfsTar) throw new CliError('bad_option', 'give --rootfs-dir or --rootfs-tar, not both', EXIT.usage, 'rootfs-dir');
      if (opts.variant !== 'minbase' && opts.variant !== 'important') throw new CliError('bad_option', `--variant "${opts.variant}" must be minbase or important`, EXIT.usage, 'variant');
      if (opts.sequence !== undefined && !/^\d{1,15}$/.test(opts.sequence)) throw new CliError('bad_option', '--sequence must be a non-negative integer', EXIT.usage, 'sequence');
      if (opts.space && !opts.push) throw new CliError('bad_option', '--space goes with --push', EXIT.usage, 'space');
      if (!/^[A-Za-z0-9][A-Za-z0-9._+-]{0,31}$/.test(opts.version)) throw new CliError('bad_option', '--version must be 1–32 letters, digits, ".", "_", "+" or "-", starting with a letter or digit', EXIT.usage, 'version');
      const size = opts.size === undefined ? undefined : parseSize(opts.size);
      // Everything that can be refused is refused before the (long) build.
      const key = readSigningKey(opts.signKey);
      const clientBundle = opts.clientBundle ?? findClientBundle();
      if (!clientBundle || !existsSync(clientBundle)) {
        throw new CliError(
          'client_bundle_missing',
          opts.clientBundle
            ? `--client-bundle ${opts.clientBundle} does not exist`
            : 'the TIPS-C bundle apps/client/dist/tips-client.cjs is not built (build the client first), or give --client-bundle <file>',
          EXIT.usage,
          'client-bundle',
        );
      }
      const sequence = opts.sequence !== undefined ? Number(opts.sequence) : Math.floor(Date.now() / 1000);
      const started = Date.now();
      const log: Log = (msg) => process.stderr.write(`build-phase1 [${((Date.now() - started) / 1000).toFixed(0)}s] ${msg}\n`);
      const outDir = opts.out ? resolve(opts.out) : mkdtempSync(join(tmpdir(), 'tips-phase1-out-'));
      mkdirSync(outDir, { recursive: true });
      const imagePath = join(outDir, `${opts.name}-${opts.version}.img`);
      try {
        const built = await buildPhase1Image(
          {
            rootfsDir: opts.rootfsDir,
            rootfsTar: opts.rootfsTar,
            suite: opts.suite,
            variant: opts.variant,
            mirror: opts.mirror,
            packages: [...DEFAULT_PACKAGES, ...(opts.include ?? [])],
            clientBundle,
            hostname: opts.hostname,
            size,
            output: imagePath,
          },
          log,
        );
        const sign = (uri: string) =>
          suit().bindGlaze({
            payloadSha256: built.sha256,
            payloadSize: built.size,
            uri,
            vendorDomain: opts.vendorDomain,
            classInfo: opts.class ?? opts.name,
            component: opts.name,
            sequenceNumber: sequence,
            text: `${opts.name} ${opts.version} (TIPS Phase 1 image, Debian ${opts.rootfsDir || opts.rootfsTar ? 'root given' : opts.suite}, kernel ${built.kernel})`,
            key,
          });
        const result: Record<string, unknown> = { name: opts.name, version: opts.version, sequence, size: built.size, sha256: built.sha256, kernel: built.kernel, rootfs: built.rootfs, seconds: { ...built.seconds, total: (Date.now() - started) / 1000 } };
        if (opts.out) {
          const envelope = sign(basename(imagePath));
          const envelopePath = join(outDir, `${opts.name}-${opts.version}.suit`);
          writeDurably(envelopePath, envelope);
          Object.assign(result, { image: imagePath, envelope: envelopePath });
        }
        if (opts.push) {
          log(`push: uploading ${bytes(built.size)} as Glaze ${opts.name}`);
          const q = new URLSearchParams({ name: opts.name, version: opts.version, mediaType: 'application/octet-stream' });
          if (opts.space?.length) q.set('spaces', opts.space.join(','));
          const client = api();
          const { body: g, sha256 } = await client.upload<GlazeOut>(`api/v1/glazes?${q}`, imagePath, undefined, {});
          if (g.sha256 !== sha256 || sha256 !== built.sha256) {
            await client.call('DELETE', glazePath(g.id)).catch(() => {});
            throw new CliError('digest_mismatch', `the master stored SHA-256 ${g.sha256} but the image is ${built.sha256}; the Glaze was removed`, EXIT.failure);
          }
          const envelope = sign(new URL(`${glazePath(g.id)}/content`, `${loadConfig().url.replace(/\/$/, '')}/`).toString());
          let manifest: unknown;
          try {
            manifest = await sendBytes('PUT', `${glazePath(g.id)}/manifest`, envelope, 'application/suit-envelope+cose');
          } catch (err) {
            // A Phase 1 Glaze is signed or not there at all: an installer would refuse it anyway.
            await client.call('DELETE', glazePath(g.id)).catch(() => {});
            throw err;
          }
          result.glaze = { ...g, manifest };
        }
        print(result, !!opts.json, (r: typeof result) =>
          [
            `built Phase 1 image ${opts.name} ${opts.version} (kernel ${built.kernel}, ${bytes(built.size)}, ${(r.seconds as { total: number }).total.toFixed(0)} s)`,
            `  sha256:   ${built.sha256}`,
            `  sequence: ${sequence}`,
            ...(r.image ? [`  image:    ${r.image}`, `  envelope: ${r.envelope}`] : []),
            ...(r.glaze ? [`  Glaze:    ${(r.glaze as GlazeOut).id} (pushed, manifest attached)`] : []),
          ].join('\n'),
        );
      } finally {
        if (!opts.out) rmSync(outDir, { recursive: true, force: true });
      }
    }),
  );
}
