// The real peers and daemons the tests use, by the command that proves each is present.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const DEBIAN_PACKAGES = [
  { check: '/usr/lib/postgresql/15/bin/initdb', pkg: 'postgresql' },
  { check: 'openssl', pkg: 'openssl' },
  { check: 'curl', pkg: 'curl' },
  { check: 'ip', pkg: 'iproute2' },
  { check: 'nft', pkg: 'nftables' },
  { check: 'conntrack', pkg: 'conntrack' },
  { check: 'udhcpc', pkg: 'udhcpc' },
  { check: 'busybox', pkg: 'busybox' },
  { check: 'mosquitto_sub', pkg: 'mosquitto-clients' },
  // The external broker Phase 3 push is also tested against (e2e/phase3-mqtt.test.ts).
  { check: '/usr/sbin/mosquitto', pkg: 'mosquitto' },
  { check: 'coap-client', pkg: 'libcoap3-bin' },
  // node-gyp builds @tips/dtls's native socket (packages/dtls/native) at `npm install`: a C compiler, make, Python.
  { check: 'gcc', pkg: 'gcc' },
  { check: '/usr/include/stdio.h', pkg: 'libc6-dev' },
  { check: 'make', pkg: 'make' },
  { check: 'python3', pkg: 'python3' },
  // The second independent DTLS stack our DTLS server is tested against (packages/dtls/test/interop.test.ts).
  { check: 'gnutls-cli', pkg: 'gnutls-bin' },
  { check: 'tftp', pkg: 'tftp-hpa' },
  { check: 'nginx', pkg: 'nginx-light' },
  { check: '/usr/lib/ipxe/undionly.kpxe', pkg: 'ipxe' },
  { check: 'atftp', pkg: 'atftp' },
  // The installer: its disk images (mkfs.ext4 -d builds test Glazes) and its boot test in qemu.
  { check: 'mkfs.ext4', pkg: 'e2fsprogs' },
  { check: 'qemu-system-x86_64', pkg: 'qemu-system-x86' },
  // Phase 1 image builder (tips glaze build-phase1) and the qemu metal of the Phase 1 e2e tests.
  { check: 'mmdebstrap', pkg: 'mmdebstrap' },
  { check: 'extlinux', pkg: 'extlinux' },
  { check: '/usr/lib/syslinux/mbr/mbr.bin', pkg: 'syslinux-common' },
  { check: 'sfdisk', pkg: 'fdisk' },
  { check: '/usr/lib/ipxe/qemu/efi-virtio.rom', pkg: 'ipxe-qemu' },
  { check: 'qemu-img', pkg: 'qemu-utils' },
  // A disk that lies for the installer's read-back test: a qcow2 served through FUSE (e2e/installer.test.ts).
  { check: 'qemu-storage-daemon', pkg: 'qemu-system-common' },
  // Onboarding: a device key inside a TPM 2.0 — the swtpm simulator and tpm2-tools (e2e/factory-tpm.test.ts).
  { check: 'swtpm', pkg: 'swtpm' },
  { check: 'tpm2_sign', pkg: 'tpm2-tools' },
  // The replicas' bus (a 3-node cluster in the bus contract suite and e2e/replicas.test.ts) and the load balancer in front of them.
  { check: 'nats-server', pkg: 'nats-server' },
  { check: '/usr/sbin/haproxy', pkg: 'haproxy' },
  // Checks the units in deploy/systemd (e2e/deploy-units.test.ts).
  { check: 'systemd-analyze', pkg: 'systemd' },
  // Reads what the S3 blob store wrote (blob contract suite, e2e/glaze-s3.test.ts); /usr/bin, not a pyenv shim.
  { check: '/usr/bin/aws', pkg: 'awscli' },
  // The web console's browser tests (playwright-core drives Debian's Chromium; never a downloaded browser).
  { check: '/usr/bin/chromium', pkg: 'chromium' },
  // Bench only (bench/dhcp.ts, issue 13): Kea's DHCPv4 server is the peer tips-gateway's DHCP is
  // measured against, and perfdhcp (in kea-admin) drives both. No test uses them.
  { check: '/usr/sbin/kea-dhcp4', pkg: 'kea-dhcp4-server' },
  { check: '/usr/sbin/perfdhcp', pkg: 'kea-admin' },
];

function has(check) {
  if (check.startsWith('/')) return existsSync(check);
  return spawnSync('sh', ['-c', `command -v ${check}`], { stdio: 'ignore' }).status === 0;
}

export function ensureDebianPackages() {
  const missing = DEBIAN_PACKAGES.filter((p) => !has(p.check)).map((p) => p.pkg);
  if (missing.length === 0) return;
  console.log(`Installing Debian packages the tests need: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const upd = spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  const inst = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], {
    stdio: 'inherit',
    env,
  });
  if (upd.status !== 0 || inst.status !== 0) {
    console.error(`Could not install ${missing.join(' ')} with apt-get (are you root with apt reachable?)`);
    process.exit(1);
  }
}
