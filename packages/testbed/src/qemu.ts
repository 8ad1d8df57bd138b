// A qemu metal for e2e tests: qemu-system-x86_64 with Debian's iPXE option ROM on its NIC (package
// ipxe-qemu), a tap on a namespace's bridge (or user-mode networking), a disk file, the firmware's and
// the operating system's console captured from the serial port to a file, and helpers to wait for a
// line of it. Always killed and cleaned up, even when a test fails.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Namespace, NsProcess, runOk, TestbedError } from './netns.ts';

export type QemuAccel = 'kvm' | 'tcg';

export const QEMU = 'qemu-system-x86_64';
/**
 * Debian's iPXE option ROM for qemu's virtio NIC (package ipxe-qemu; BIOS and EFI images in one). It is
 * qemu's default ROM for virtio-net-pci on Debian, and it is used as the default: qemu adjusts only a
 * default ROM to the device, and the same file given with `romfile=` is never run by SeaBIOS.
 */
export const IPXE_VIRTIO_ROM = '/usr/lib/ipxe/qemu/efi-virtio.rom';

export interface QemuMetalOptions {
  /** The NIC's MAC (the metal's PXE interface). */
  mac: string;
  /** A tap inside this namespace, enslaved to `bridge` (the gateway's LAN); without it, qemu's user-mode network. */
  lan?: { ns: Namespace; bridge: string };
  /** With user-mode networking: extra `-netdev user` options (e.g. `guestfwd=…`). */
  userNet?: string;
  /** The disk: an existing image file, or (with `sizeBytes`) a new empty sparse file at that path. */
  disk: { file: string; sizeBytes?: number; snapshot?: boolean };
  /** qemu's boot order: `nc` = network first, then the disk (what a PXE metal's firmware does). */
  bootOrder?: string;
  memoryMiB?: number;
  /** The NIC's option ROM (`romfile=`); default: qemu's own, Debian's iPXE efi-virtio.rom. */
  nicRom?: string;
  accel?: QemuAccel;
  /** Let the guest reboot (an installer reboots into the installed system); default: a reboot ends qemu. */
  reboot?: boolean;
  /** A Linux kernel to probe KVM with (see qemuAccel) when `accel` is not given. */
  probeKernel?: string;
  /** Where the serial log (and the disk, when created here) goes; default: a new temp directory. */
  workDir?: string;
  label?: string;
}

/** qemu dies with the test process, even when that is killed before it can clean up. */
const PDEATHSIG = ['--pdeathsig', 'KILL'];

const accelChoice = new Map<string, Promise<QemuAccel>>();

/**
 * KVM when /dev/kvm exists and really runs a guest, TCG otherwise. Nested KVM can accept a VM and
 * then hang as soon as a boot loader or kernel leaves real mode (this machine: Linux stops after
 * "Probing EDD"), so with `probeKernel` the probe boots that Linux kernel under KVM and needs its
 * "Linux version" line on the serial console; without one it needs the iPXE option ROM's banner
 * (weaker: iPXE survived where Linux hung). `TIPS_QEMU_ACCEL=kvm|tcg` overrides.
 */
export function qemuAccel(probeKernel?: string): Promise<QemuAccel> {
  const forced = process.env.TIPS_QEMU_ACCEL;
  if (forced === 'kvm' || forced === 'tcg') return Promise.resolve(forced);
  const key = probeKernel ?? '';
  let p = accelChoice.get(key);
  if (!p) {
    p = probeKvm(probeKernel);
    accelChoice.set(key, p);
  }
  return p;
}

async function probeKvm(kernel?: string): Promise<QemuAccel> {
  if (!existsSync('/dev/kvm')) return 'tcg';
  const dir = mkdtempSync(join(tmpdir(), 'tb-qemu-probe-'));
  try {
    const log = join(dir, 'serial.log');
    const guest = kernel
      ? { args: ['-kernel', kernel, '-append', 'console=ttyS0 panic=-1'], banner: /Linux version/ }
      : { args: ['-netdev', 'user,id=n0,restrict=on', '-device', 'virtio-net-pci,netdev=n0', '-boot', 'order=n'], banner: /iPXE/ };
    const child = spawn('setpriv', [...PDEATHSIG, QEMU, ...baseArgs('kvm', 256, log, dir), ...guest.args], { stdio: 'ignore' });
    const end = Date.now() + 20_000;
    let ok = false;
    while (Date.now() < end && child.exitCode === null) {
      if (existsSync(log) && guest.banner.test(readFileSync(log, 'latin1'))) {
        ok = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    child.kill('SIGKILL');
    return ok ? 'kvm' : 'tcg';
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** SeaBIOS copies the text console (its own, and iPXE's) to this I/O port: 0x3f8, COM1. */
function serconFile(dir: string): string {
  const f = join(dir, 'sercon-port');
  writeFileSync(f, Buffer.from([0xf8, 0x03]));
  return f;
}

function baseArgs(accel: QemuAccel, memoryMiB: number, serialLog: string, dir: string, reboot = false): string[] {
  return [
    ...['-accel', accel, '-m', String(memoryMiB), '-smp', '1'],
    ...['-nodefaults', '-display', 'none', '-vga', 'none', '-monitor', 'none', ...(reboot ? [] : ['-no-reboot'])],
    ...['-serial', `file:${serialLog}`],
    ...['-fw_cfg', `name=etc/sercon-port,file=${serconFile(dir)}`],
  ];
}

/** The console without terminal escapes, backspaces and carriage returns (what a person would read). */
export function stripTerminal(s: string): string {
  return s.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1bc|[\x08\r]/g, '');
}

const TAP = /^[a-z0-9]{1,15}$/;

/** A running qemu metal. `await using m = await QemuMetal.start(…)` kills it and removes what it made. */
export class QemuMetal {
  private stopped = false;

  private constructor(
    readonly proc: NsProcess,
    readonly serialLog: string,
    readonly accel: QemuAccel,
    readonly args: string[],
    private readonly cleanup: () => Promise<void>,
  ) {}

  static async start(opts: QemuMetalOptions): Promise<QemuMetal> {
    if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(opts.mac)) throw new TestbedError('bad_name', `MAC "${opts.mac}" must be six lower-case hex pairs`);
    const accel = opts.accel ?? (await qemuAccel(opts.probeKernel));
    const ownDir = opts.workDir === undefined;
    const dir = opts.workDir ?? mkdtempSync(join(tmpdir(), 'tb-qemu-'));
    const serialLog = join(dir, `serial-${randomBytes(3).toString('hex')}.log`);
    writeFileSync(serialLog, '');
    const undo: Array<() => Promise<unknown>> = [];
    const cleanup = async () => {
      for (const u of undo.reverse()) await u().catch(() => undefined);
      if (ownDir) rmSync(dir, { recursive: true, force: true });
    };
    try {
      if (opts.disk.sizeBytes !== undefined) {
        const fd = openSync(opts.disk.file, 'w');
        closeSync(fd);
        await runOk('truncate', ['--size', String(opts.disk.sizeBytes), opts.disk.file]);
      } else if (!existsSync(opts.disk.file)) {
        throw new TestbedError('command_failed', `disk ${opts.disk.file} does not exist`);
      }
      const rom = opts.nicRom ?? IPXE_VIRTIO_ROM;
      if (!existsSync(rom)) throw new TestbedError('command_failed', `no iPXE option ROM at ${rom} (apt-get install ipxe-qemu)`);
      const romOpt = opts.nicRom ? `,romfile=${opts.nicRom}` : '';
      const args = [
        ...baseArgs(accel, opts.memoryMiB ?? 1024, serialLog, dir, opts.reboot),
        ...['-drive', `file=${opts.disk.file},format=raw,if=virtio,cache=unsafe${opts.disk.snapshot ? ',snapshot=on' : ''}`],
        ...['-device', `virtio-net-pci,netdev=n0,mac=${opts.mac}${romOpt}`],
        ...['-boot', `order=${opts.bootOrder ?? 'nc'}`],
      ];
      let proc: NsProcess;
      const label = opts.label ?? `qemu ${opts.mac}`;
      if (opts.lan) {
        const { ns, bridge } = opts.lan;
        const tap = `tap${randomBytes(4).toString('hex')}`;
        if (!TAP.test(tap)) throw new TestbedError('bad_name', `tap name ${tap}`);
        await ns.ip('tuntap', 'add', 'dev', tap, 'mode', 'tap');
        undo.push(() => ns.ip('link', 'del', tap));
        await ns.enslave(tap, bridge);
        await ns.up(tap);
        args.push('-netdev', `tap,id=n0,ifname=${tap},script=no,downscript=no`);
        // `ip netns exec` stays qemu's parent: it too must die with the test process, and qemu with it.
        const child: ChildProcess = spawn('setpriv', [...PDEATHSIG, 'ip', 'netns', 'exec', ns.name, 'setpriv', ...PDEATHSIG, QEMU, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
        proc = new NsProcess(child, label);
      } else {
        args.push('-netdev', `user,id=n0${opts.userNet ? `,${opts.userNet}` : ''}`);
        const child: ChildProcess = spawn('setpriv', [...PDEATHSIG, QEMU, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
        proc = new NsProcess(child, label);
      }
      undo.push(() => proc.kill9());
      return new QemuMetal(proc, serialLog, accel, args, cleanup);
    } catch (err) {
      await cleanup();
      throw err;
    }
  }

  /** Everything the serial port printed so far (firmware, iPXE, boot loader, kernel, systemd, login). */
  get serial(): string {
    try {
      return readFileSync(this.serialLog, 'latin1');
    } catch {
      return '';
    }
  }

  get running(): boolean {
    return this.proc.running;
  }

  /** Resolves with the first match on the serial console; rejects on timeout or when qemu exits first. */
  async waitForSerial(pattern: RegExp, timeoutMs: number, from = 0): Promise<RegExpMatchArray> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const m = this.serial.slice(from).match(pattern);
      if (m) return m;
      if (!this.proc.running) throw new TestbedError('command_failed', `qemu exited (${this.proc.exitCode}) before the console showed ${pattern}:\n${this.proc.output.slice(-2000)}\n--- serial ---\n${this.tail()}`);
      if (Date.now() > end) throw new TestbedError('timeout', `the console showed no ${pattern} within ${timeoutMs} ms (${this.accel}):\n${this.tail()}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** The last lines of the console, escape sequences removed (for failure messages). */
  tail(chars = 3000): string {
    return stripTerminal(this.serial).slice(-chars);
  }

  /** Kills qemu (no guest shutdown: a test metal has nothing to save) and removes what start() made. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.cleanup();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
