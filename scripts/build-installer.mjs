#!/usr/bin/env node
// `npm run build:installer`: TIPS's in-memory install environment (Phase 1) — a Debian kernel and an
// initramfs made from Debian packages only (fetched with `apt-get download`, unpacked with
// `dpkg-deb -x`): busybox-static, Debian 12's Node 18 with exactly the libraries `ldd` names, the
// kernel modules for virtio/e1000 NICs, virtio/SATA/NVMe disks, ext4 and loop, the installer bundle
// (dist/installer/tips-installer.mjs) and an /init that brings the NIC up with udhcpc and runs it.
//
// Output: ${TIPS_CACHE_DIR:-$HOME/.cache/tips}/installer/<sha256 of inputs>/{vmlinuz,initrd.img,build.json}
// and a `current` symlink to it (what the gateway serves by default). Inputs = this script, the
// bundle and the exact package versions, so a new Debian security update or a new installer makes a
// new directory and an unchanged one is reused in milliseconds. Built in a temp dir and renamed into
// place; `current` is replaced by rename, so a gateway never serves half a build.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { buildBins, DIST, INSTALLER } from './build.mjs';

export const CACHE = join(process.env.TIPS_CACHE_DIR || join(homedir(), '.cache/tips'), 'installer');

/** Debian packages the environment is made of (the kernel's versioned package is resolved below). */
const PACKAGES = [
  'busybox-static',
  'nodejs',
  'libnode108',
  'libc6',
  'libgcc-s1',
  'libstdc++6',
  'libssl3',
  'libuv1',
  'libc-ares2',
  'libnghttp2-14',
  'libbrotli1',
  'libicu72',
  'zlib1g',
  // libnode108 loads these JavaScript modules (and theirs) from /usr/share/nodejs.
  'node-acorn',
  'node-cjs-module-lexer',
  'node-undici',
  'node-busboy',
  'node-xtend',
];

/** Kernel modules loaded by /init, with their dependencies (from each module's .modinfo). */
const MODULES = [
  'crc32c_generic',
  'crc32c-intel',
  'virtio_pci',
  'virtio_net',
  'virtio_blk',
  'e1000',
  'e1000e',
  'ahci',
  'sd_mod',
  'nvme',
  'ext4',
  'loop',
];

const log = (m) => process.stdout.write(`build-installer: ${m}\n`);

function sh(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...opts });
}

/** The version apt would download; for nodejs the Debian 18.x one even where another repo is installed. */
function candidate(pkg) {
  if (pkg === 'nodejs') {
    const v = sh('apt-cache', ['madison', 'nodejs'])
      .split('\n')
      .map((l) => l.split('|').map((x) => x.trim()))
      .find((c) => c[1]?.startsWith('18.') && /debian/.test(c[2] ?? ''))?.[1];
    if (!v) throw new Error("no Debian nodejs 18.x in apt's lists (run apt-get update; is bookworm in sources?)");
    return v;
  }
  const m = /Candidate: (\S+)/.exec(sh('apt-cache', ['policy', pkg]));
  if (!m || m[1] === '(none)') throw new Error(`apt has no candidate for ${pkg} (run apt-get update)`);
  return m[1];
}

function kernelPackage() {
  const m = /Depends: (linux-image-[0-9][^\s]*-amd64)/.exec(sh('apt-cache', ['depends', 'linux-image-amd64']));
  if (!m) throw new Error('linux-image-amd64 names no linux-image-<abi>-amd64');
  return m[1];
}

/** Section `.modinfo` of an ELF64 kernel module: its key=value strings. */
export function modinfo(ko) {
  const b = readFileSync(ko);
  if (b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2) throw new Error(`${ko}: not an ELF64 file`);
  const shoff = Number(b.readBigUInt64LE(0x28));
  const shentsize = b.readUInt16LE(0x3a);
  const shnum = b.readUInt16LE(0x3c);
  const shstrndx = b.readUInt16LE(0x3e);
  const sec = (i) => {
    const o = shoff + i * shentsize;
    return { name: b.readUInt32LE(o), offset: Number(b.readBigUInt64LE(o + 0x18)), size: Number(b.readBigUInt64LE(o + 0x20)) };
  };
  const strtab = sec(shstrndx);
  for (let i = 0; i < shnum; i++) {
    const s = sec(i);
    const end = b.indexOf(0, strtab.offset + s.name);
    if (b.toString('latin1', strtab.offset + s.name, end) !== '.modinfo') continue;
    return b
      .toString('utf8', s.offset, s.offset + s.size)
      .split('\0')
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]);
  }
  return [];
}

/** Every module file by name (a-b and a_b are the same module), then the load order with deps first. */
function moduleOrder(modRoot, wanted) {
  const byName = new Map();
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ko')) byName.set(e.name.slice(0, -3).replace(/-/g, '_'), p);
    }
  };
  walk(join(modRoot, 'kernel'));
  const order = [];
  const seen = new Set();
  const visit = (name) => {
    const n = name.replace(/-/g, '_');
    if (seen.has(n)) return;
    seen.add(n);
    const file = byName.get(n);
    if (!file) return; // built into this kernel
    for (const [k, v] of modinfo(file)) if (k === 'depends' && v) for (const dep of v.split(',')) visit(dep);
    order.push(file);
  };
  for (const w of wanted) visit(w);
  return order;
}

// ---- cpio "newc" (the initramfs format), written here so the archive is byte-for-byte reproducible.
function cpioEntry(name, mode, data, ino) {
  const hex = (n) => n.toString(16).padStart(8, '0');
  const nameBuf = Buffer.from(`${name}\0`);
  const header =
    '070701' + hex(ino) + hex(mode) + hex(0) + hex(0) + hex(1) + hex(0) + hex(data.length) + hex(0) + hex(0) + hex(0) + hex(0) + hex(nameBuf.length) + hex(0);
  const pad = (n) => Buffer.alloc((4 - (n % 4)) % 4);
  const head = Buffer.concat([Buffer.from(header, 'latin1'), nameBuf]);
  return Buffer.concat([head, pad(head.length), data, pad(data.length)]);
}

export function cpioArchive(rootDir) {
  const parts = [];
  let ino = 1;
  const walk = (rel) => {
    const abs = join(rootDir, rel);
    const st = lstatSync(abs);
    if (rel) {
      if (st.isSymbolicLink()) parts.push(cpioEntry(rel, 0o120777, Buffer.from(readlinkSync(abs)), ino++));
      else if (st.isDirectory()) parts.push(cpioEntry(rel, 0o040000 | (st.mode & 0o7777), Buffer.alloc(0), ino++));
      else parts.push(cpioEntry(rel, 0o100000 | (st.mode & 0o7777), readFileSync(abs), ino++));
    }
    if (st.isDirectory() && !st.isSymbolicLink()) for (const e of readdirSync(abs).sort()) walk(rel ? `${rel}/${e}` : e);
  };
  walk('');
  parts.push(cpioEntry('TRAILER!!!', 0, Buffer.alloc(0), 0));
  return Buffer.concat(parts);
}

const UDHCPC_SCRIPT = `#!/bin/sh
# busybox udhcpc hook: address, default route.
case "$1" in
  deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip addr replace "$ip/\${mask:-24}" dev "$interface"
    for r in $router; do ip route replace default via "$r" dev "$interface"; break; done
    echo "tips-init: $interface has $ip" ;;
esac
exit 0
`;

export const INIT = `#!/bin/sh
# TIPS install environment: mount the kernel's filesystems, load drivers, bring up the NIC with
# udhcpc, run the installer. On failure say why on the console and wait (the metal stays put; the
# operator sees the reason here and in the job record).
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu
mkdir -p /proc /sys /dev /run /tmp /mnt
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs -o mode=0755 tmpfs /run
echo "tips-init: TIPS install environment, kernel $(uname -r)"
while read -r m; do insmod "$m" 2>/dev/null; done < /etc/tips-modules
i=0
while [ $i -lt 20 ]; do
  for n in /sys/class/net/*; do n=\${n##*/}; [ "$n" = lo ] || NICS="$NICS $n"; done
  [ -n "$NICS" ] && break
  i=$((i+1)); sleep 0.25
done
ip link set lo up
up=""
for n in $NICS; do
  ip link set "$n" up
  if udhcpc -i "$n" -s /etc/udhcpc.script -t 10 -T 2 -n -q -V TIPSInstaller; then up="$n"; break; fi
done
[ -n "$up" ] || echo "tips-init: no NIC got an address over DHCP ($NICS)"
/usr/bin/node /opt/tips/tips-installer.mjs
rc=$?
if [ $rc -ne 0 ]; then
  echo "tips-init: the installer stopped (exit $rc); the reason is in its last log line above. Waiting."
  while true; do sleep 3600; done
fi
# The installer reboots itself after a successful install; if it could not, do it here.
sync
reboot -f
`;

/** Inputs → cache key. */
function inputsKey(bundle, versions) {
  const h = createHash('sha256');
  h.update(readFileSync(import.meta.filename));
  h.update(createHash('sha256').update(bundle).digest());
  for (const [p, v] of versions) h.update(`${p}=${v}\n`);
  return h.digest('hex');
}

function copyInto(src, dst) {
  mkdirSync(dirname(dst), { recursive: true });
  copyFileSync(src, dst);
  chmodSync(dst, statSync(src).mode & 0o7777);
}

/** The shared libraries `ldd` names for the binary, resolved inside the staging tree. */
function lddClosure(staging, binary) {
  const libPath = ['lib/x86_64-linux-gnu', 'usr/lib/x86_64-linux-gnu', 'lib64'].map((d) => join(staging, d)).join(':');
  const out = sh('ldd', [binary], { env: { ...process.env, LD_LIBRARY_PATH: libPath } });
  const libs = [];
  for (const line of out.split('\n')) {
    const m = /=>\s+(\/\S+)/.exec(line) ?? /^\s+(\/\S+ld-linux\S*)/.exec(line);
    if (!m) continue;
    if (/not found/.test(line)) throw new Error(`ldd: ${line.trim()}`);
    libs.push(m[1]);
  }
  return libs;
}

export async function buildInstaller({ force = false } = {}) {
  const started = Date.now();
  await buildBins({ quiet: true });
  const bundlePath = join(DIST, INSTALLER.out);
  const bundle = readFileSync(bundlePath);
  const kernelPkg = kernelPackage();
  const versions = [...PACKAGES, kernelPkg].map((p) => [p, candidate(p)]);
  const key = inputsKey(bundle, versions);
  const outDir = join(CACHE, key);
  mkdirSync(CACHE, { recursive: true });
  if (!force && existsSync(join(outDir, 'initrd.img')) && existsSync(join(outDir, 'vmlinuz'))) {
    pointCurrent(key);
    log(`up to date: ${outDir} (${Date.now() - started} ms)`);
    return outDir;
  }
  const tmp = join(CACHE, `.tmp-${process.pid}-${Date.now()}`);
  rmSync(tmp, { recursive: true, force: true });
  try {
    const debs = join(tmp, 'debs');
    const staging = join(tmp, 'staging');
    const root = join(tmp, 'root');
    const out = join(tmp, 'out');
    for (const d of [debs, staging, root, out]) mkdirSync(d, { recursive: true });
    log(`apt-get download ${versions.length} packages`);
    const dl = spawnSync('apt-get', ['download', '-q', '-o', 'APT::Sandbox::User=root', ...versions.map(([p, v]) => `${p}=${v}`)], { cwd: debs, encoding: 'utf8' });
    if (dl.status !== 0) throw new Error(`apt-get download failed: ${dl.stderr}`);
    for (const f of readdirSync(debs).filter((f) => f.endsWith('.deb'))) sh('dpkg-deb', ['-x', join(debs, f), staging]);

    // busybox (static) and the directory skeleton
    for (const d of ['bin', 'usr/bin', 'etc', 'opt/tips', 'proc', 'sys', 'dev', 'run', 'tmp', 'mnt', 'root']) mkdirSync(join(root, d), { recursive: true });
    copyInto(join(staging, 'bin/busybox'), join(root, 'bin/busybox'));
    symlinkSync('busybox', join(root, 'bin/sh'));

    // Node 18 and exactly the libraries ldd names (libc, libstdc++, libnode, ICU, OpenSSL, …)
    const node = join(staging, 'usr/bin/node');
    copyInto(node, join(root, 'usr/bin/node'));
    for (const lib of lddClosure(staging, node)) {
      const rel = lib.startsWith(staging) ? relative(staging, lib) : relative('/', lib);
      // Keep the soname path the loader asks for; its content is the staged (Debian package) file.
      const staged = existsSync(join(staging, rel)) ? realpathSync(join(staging, rel)) : realpathSync(lib);
      copyInto(staged, join(root, rel));
    }
    // The JavaScript modules libnode108 loads at start (acorn, acorn-walk, cjs-module-lexer, undici, …).
    mkdirSync(join(root, 'usr/share'), { recursive: true });
    sh('cp', ['-a', join(staging, 'usr/share/nodejs'), join(root, 'usr/share/nodejs')]);

    // kernel and modules
    const kver = readdirSync(join(staging, 'lib/modules'))[0];
    copyFileSync(join(staging, `boot/vmlinuz-${kver}`), join(out, 'vmlinuz'));
    const modRoot = join(staging, 'lib/modules', kver);
    const order = moduleOrder(modRoot, MODULES);
    const loadList = [];
    for (const f of order) {
      const rel = relative(staging, f);
      copyInto(f, join(root, rel));
      loadList.push(`/${rel}`);
    }
    writeFileSync(join(root, 'etc/tips-modules'), `${loadList.join('\n')}\n`);

    // the installer and /init
    copyInto(bundlePath, join(root, 'opt/tips/tips-installer.mjs'));
    writeFileSync(join(root, 'init'), INIT, { mode: 0o755 });
    writeFileSync(join(root, 'etc/udhcpc.script'), UDHCPC_SCRIPT, { mode: 0o755 });
    writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    writeFileSync(join(root, 'etc/group'), 'root:x:0:\n');

    // Proof before it is cached: Debian's Node 18 starts the bundle in this very tree.
    if (process.getuid?.() === 0) {
      const probe = spawnSync('chroot', [root, '/usr/bin/node', '/opt/tips/tips-installer.mjs', '--help'], { encoding: 'utf8', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
      if (probe.status !== 0 || !/tips-installer/.test(probe.stdout)) throw new Error(`Node 18 in the initramfs tree cannot run the installer: ${probe.stderr || probe.stdout}`);
      log(`chroot check: ${sh('chroot', [root, '/usr/bin/node', '--version'], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } }).trim()} runs tips-installer --help`);
    }
    const cpio = cpioArchive(root);
    const initrd = gzipSync(cpio, { level: 6 });
    writeFileSync(join(out, 'initrd.img'), initrd);
    const info = {
      key,
      kernel: kver,
      packages: Object.fromEntries(versions),
      modules: loadList.map((m) => m.split('/').pop()),
      bytes: { vmlinuz: statSync(join(out, 'vmlinuz')).size, initrdUncompressed: cpio.length, initrd: initrd.length },
      buildSeconds: Math.round((Date.now() - started) / 100) / 10,
      builtAt: new Date().toISOString(),
    };
    writeFileSync(join(out, 'build.json'), `${JSON.stringify(info, null, 2)}\n`);
    spawnSync('sync', [join(out, 'vmlinuz'), join(out, 'initrd.img'), join(out, 'build.json')]);
    rmSync(outDir, { recursive: true, force: true });
    renameSync(out, outDir);
    pointCurrent(key);
    log(
      `built ${outDir}: kernel ${kver}, vmlinuz ${(info.bytes.vmlinuz / 1e6).toFixed(1)} MB, initrd.img ${(info.bytes.initrd / 1e6).toFixed(1)} MB (${(info.bytes.initrdUncompressed / 1e6).toFixed(1)} MB unpacked), ${info.buildSeconds} s`,
    );
    return outDir;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** `current` → <key>, replaced atomically (symlink beside it, then rename over). */
function pointCurrent(key) {
  const link = join(CACHE, 'current');
  const tmpLink = join(CACHE, `.current-${process.pid}`);
  rmSync(tmpLink, { force: true });
  symlinkSync(key, tmpLink);
  renameSync(tmpLink, link);
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  if (process.argv.includes('--help')) {
    process.stdout.write(`Usage: npm run build:installer [-- --force]\nBuilds ${CACHE}/<hash>/{vmlinuz,initrd.img} and points ${CACHE}/current at it.\n`);
  } else {
    await buildInstaller({ force: process.argv.includes('--force') });
  }
}
