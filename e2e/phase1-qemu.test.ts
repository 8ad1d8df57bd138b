// Issue 8, test 2 (T13): real firmware to a booted, enrolled system. qemu-system-x86_64 with Debian's
// iPXE option ROM and an empty disk sits on the gateway's LAN through a tap; it PXE-boots through the
// real tips-gateway (DHCP → HTTP script from the real tips-master), runs the installer `npm run
// build:installer` made, which installs the Glaze `tips glaze build-phase1 --push` made, reboots from
// its disk, and the installed system's TIPS-C enrolls with the master over EST. An unregistered MAC in
// qemu gets no boot file.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { QemuMetal, stripTerminal, until } from '@tips/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayLab, randomMac } from './gateway-topology.ts';
import { ROOT, TIPS } from './helpers.ts';
import { withImagePartition } from './phase1-fixtures.ts';

const ADDR = { masterIp: '10.97.0.1', gatewayUplinkIp: '10.97.0.2', gatewayLanIp: '10.77.0.1' };
const BOOT_PORT = 8080;
const TLS_PORT = 8443;
const MIB = 1024 * 1024;
const INSTALLER = join(process.env.TIPS_CACHE_DIR || join(homedir(), '.cache/tips'), 'installer', 'current');
let lab: GatewayLab;
let work: string;
let glaze: { id: string; sha256: string; size: number; kernel: string };

function must(cmd: string, args: string[], timeout = 120_000): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} → ${r.status}\n${r.stderr}`);
  return r.stdout;
}

function tipsAsync(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [TIPS, ...args], {
      env: { ...process.env, TIPS_URL: lab.masterUrl, TIPS_TOKEN: lab.adminToken, TIPS_CONFIG: join(work, 'no-config.json') },
    });
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
  work = mkdtempSync(join(tmpdir(), 'tips-phase1-qemu-'));
  // The installer (kernel + initramfs) the gateway serves: built by the project's own script, cached by
  // the hash of its inputs (the installer bundle included), so a changed installer is rebuilt, never stale.
  must(process.execPath, [join(ROOT, 'scripts/build-installer.mjs')], 1_800_000);
  lab = await GatewayLab.start('p1q', ADDR, ['--boot-http-port', String(BOOT_PORT)], {
    bootServices: true,
    // The installed system enrolls over EST at the master's TLS address, reached through the gateway.
    masterArgs: ['--tls-port', String(TLS_PORT), '--tls-hostname', ADDR.masterIp],
  });
  // The owner's key signs the Glaze; the installer trusts the owner's registered keys.
  must('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', join(work, 'owner.pem')]);
  await lab.api('POST', '/api/v1/keys', { name: 'owner-phase1', publicKey: must('openssl', ['pkey', '-in', join(work, 'owner.pem'), '-pubout']) });
  const r = await tipsAsync(['glaze', 'build-phase1', '--name', 'base-os', '--version', '1.0', '--sequence', '5', '--sign-key', join(work, 'owner.pem'), '--push', '--space', lab.phase1Space, '--json']);
  if (r.code !== 0) throw new Error(`build-phase1 exited ${r.code}:\n${r.stderr.slice(-4000)}`);
  const out = JSON.parse(r.stdout) as { sha256: string; size: number; kernel: string; glaze: { id: string } };
  glaze = { id: out.glaze.id, sha256: out.sha256, size: out.size, kernel: out.kernel };
  await lab.api('PATCH', `/api/v1/spaces/${lab.phase1Space}`, { glaze: glaze.id });
}, 3_600_000);

afterAll(async () => {
  await lab?.destroy();
  if (work && !process.env.TIPS_KEEP) rmSync(work, { recursive: true, force: true });
});

// Beside the registered metal, a second qemu with an unregistered MAC boots on the same LAN at the same
// time (no extra wall time): real iPXE gets no boot file from the gateway (boot-path proves the same
// with udhcpc, tftp-hpa and curl).
describe('T13 Phase 1 in qemu: real iPXE firmware → gateway → installer → the built Glaze on disk → TIPS-C enrolled', () => {
  it(
    'a registered metal PXE-boots, installs the Glaze, reboots from its disk and enrolls; the master shows the job installed and the certificate; an unregistered MAC beside it gets no boot file',
    async () => {
      const mac = randomMac();
      const metal = await lab.declareMetal('qemu-metal', mac);
      const strangerMac = randomMac();
      const stranger = await QemuMetal.start({
        mac: strangerMac,
        lan: { ns: lab.gw, bridge: 'br0' },
        disk: { file: join(work, 'stranger.img'), sizeBytes: 64 * MIB },
        bootOrder: 'n',
        probeKernel: join(INSTALLER, 'vmlinuz'),
        workDir: work,
        label: 'qemu-stranger',
      });
      const disk = join(work, 'metal.img');
      const vm = await QemuMetal.start({
        mac,
        lan: { ns: lab.gw, bridge: 'br0' },
        disk: { file: disk, sizeBytes: glaze.size + 256 * MIB },
        bootOrder: 'nc',
        reboot: true,
        // The installer holds the whole Glaze in memory to verify it before writing a byte.
        memoryMiB: 3072,
        probeKernel: join(INSTALLER, 'vmlinuz'),
        workDir: work,
        label: 'qemu-metal',
      });
      const step = 20 * 60_000;
      try {
        await vm.waitForSerial(/iPXE/, step);
        await vm.waitForSerial(new RegExp(`http://${ADDR.gatewayLanIp.replace(/\./g, '\\.')}:${BOOT_PORT}/boot/script\\.ipxe`), step);
        await vm.waitForSerial(/Linux version/, step);
        // The installer ran, and the metal came back from its own disk: extlinux, then the installed kernel.
        const installerBoot = vm.serial.length;
        await vm.waitForSerial(/SYSLINUX 6\.04/, step, installerBoot - 1);
        await vm.waitForSerial(new RegExp(`enrolled: ${metal.id}, certificate [0-9a-f]+ valid until`), step);
        await vm.waitForSerial(/tips-metal login:/, step);
        const console = stripTerminal(vm.serial);
        expect(console).toContain('root=LABEL=tips-root');
        // S12: the job token reaches the installer on its kernel command line (which Linux itself
        // prints); the installer's own log lines never repeat it.
        const token = /tips\.token=(\S+)/.exec(console)?.[1];
        expect(token, 'the installer kernel command line carries tips.token=').toBeTruthy();
        const installerLines = console.split('\n').filter((l) => l.includes('"app":"tips-installer"'));
        expect(installerLines.length).toBeGreaterThan(3);
        for (const line of installerLines) expect(line).not.toContain(token);
        // The stranger, meanwhile: iPXE gave up on the network (no boot file), and the BIOS had nothing left.
        await stranger.waitForSerial(/No bootable device|Nothing to boot|No more network devices/, step);
      } finally {
        await vm.stop();
        await stranger.stop();
      }
      const strangerConsole = stripTerminal(stranger.serial);
      expect(strangerConsole).toMatch(/iPXE/);
      // The gateway may name the script in its DHCP answer; what matters is that nothing was served.
      expect(strangerConsole).not.toMatch(/script\.ipxe\.\.\. ok/);
      expect(strangerConsole).not.toContain('/boot/installer/vmlinuz');
      expect(strangerConsole).not.toMatch(/Linux version/);
      const row = await until('the stranger in the interface table', async () => (await lab.row(strangerMac)) ?? undefined, 30_000).catch(() => undefined);
      expect(row?.state ?? 'unknown').not.toBe('active');
      expect(JSON.stringify((await lab.api<{ items: unknown[] }>('GET', '/api/v1/provisioning/jobs')).items)).not.toContain(strangerMac);
      const jobs = await lab.api<{ items: Array<{ id: string; state: string; glazeId?: string; glaze?: { id: string } }> }>('GET', `/api/v1/provisioning/jobs?metal=${metal.id}`);
      expect(jobs.items[0]?.state).toBe('installed');
      const certs = await lab.api<{ items: Array<{ serial: string }> }>('GET', `/api/v1/enrollment/certificates?metal=${metal.id}`);
      expect(certs.items).toHaveLength(1);
      // The disk claims the Glaze with the TIPS marker (CONTRACT A6), and holds the installer's TIPS-C files.
      const tail = readFileSync(disk).subarray(-4096);
      expect(tail.subarray(0, 10).toString('latin1')).toBe('TIPSMARK1\n');
      expect(tail.toString('latin1')).toContain(glaze.sha256);
      await withImagePartition(disk, (root) => {
        expect(existsSync(join(root, 'etc/tips-client/config.json'))).toBe(true);
        expect(existsSync(join(root, 'etc/tips-client/enrollment.json'))).toBe(false);
      });
    },
    90 * 60_000,
  );
});
