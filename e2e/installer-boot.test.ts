// Smoke test of the install environment `npm run build:installer` makes: Debian's kernel boots the
// initramfs in qemu, /init loads the NIC driver and gets an address from qemu's DHCP server with
// busybox udhcpc, and Debian's Node 18 starts the installer, whose first log line reaches the serial
// console. KVM first; where KVM cannot boot a guest (nested virtualisation that hangs in early boot,
// as on this project's machines), TCG.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from './helpers.ts';

const CACHE = join(process.env.TIPS_CACHE_DIR || join(homedir(), '.cache/tips'), 'installer');
const TOKEN = 'c21va2UtdGVzdC10b2tlbi1ub3QtYS1yZWFsLW9uZQ';
let dir = '';
const vms: ChildProcess[] = [];

interface Boot {
  accel: string;
  console: string;
  reached: boolean;
}

/** Boots the environment; resolves when `done` matches the console, or at the deadline. */
function boot(accel: 'kvm' | 'tcg', done: RegExp, deadlineMs: number, firstSignMs: number): Promise<Boot> {
  const args = [
    ...(accel === 'kvm' ? ['-enable-kvm'] : ['-accel', 'tcg']),
    '-m',
    '1024',
    '-kernel',
    join(dir, 'vmlinuz'),
    '-initrd',
    join(dir, 'initrd.img'),
    '-append',
    `console=ttyS0 tips.boot=http://10.0.2.2:9 tips.job=p1j_smoke tips.token=${TOKEN} tips.disk=/dev/vda`,
    '-nographic',
    '-no-reboot',
    // qemu's own user-mode network: a DHCP server for udhcpc, and no way out (restrict=on).
    '-nic',
    'user,model=virtio-net-pci,restrict=on',
  ];
  const vm = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  vms.push(vm);
  let out = '';
  return new Promise((resolve) => {
    const finish = (reached: boolean) => {
      clearTimeout(deadline);
      clearTimeout(sign);
      vm.kill('SIGKILL');
      resolve({ accel, console: out, reached });
    };
    const deadline = setTimeout(() => finish(false), deadlineMs);
    // No kernel line at all by then: this accelerator does not boot guests here.
    const sign = setTimeout(() => {
      if (!/Linux version|Run \/init/.test(out)) finish(false);
    }, firstSignMs);
    const take = (d: Buffer) => {
      out += d.toString('utf8');
      if (done.test(out)) finish(true);
    };
    vm.stdout!.on('data', take);
    vm.stderr!.on('data', take);
    vm.on('exit', () => finish(done.test(out)));
  });
}

beforeAll(() => {
  const r = spawnSync(process.execPath, [join(ROOT, 'scripts/build-installer.mjs')], { encoding: 'utf8', timeout: 900_000 });
  if (r.status !== 0) throw new Error(`npm run build:installer failed: ${r.stdout}\n${r.stderr}`);
  dir = realpathSync(join(CACHE, 'current'));
}, 900_000);

afterAll(() => {
  for (const vm of vms) vm.kill('SIGKILL');
});

describe('T13 Phase 1 install environment: the Debian kernel boots the initramfs to the installer (qemu)', () => {
  it('builds vmlinuz + initrd.img under the cache, keyed by the inputs, with `current` pointing at it', () => {
    expect(existsSync(join(dir, 'vmlinuz'))).toBe(true);
    expect(existsSync(join(dir, 'initrd.img'))).toBe(true);
    expect(dir.startsWith(realpathSync(CACHE))).toBe(true);
    expect(dir.split('/').pop()).toMatch(/^[0-9a-f]{64}$/);
    const info = JSON.parse(readFileSync(join(dir, 'build.json'), 'utf8')) as { packages: Record<string, string>; modules: string[] };
    expect(info.packages.nodejs).toMatch(/^18\./);
    expect(info.modules).toEqual(expect.arrayContaining(['virtio_net.ko', 'virtio_blk.ko', 'e1000.ko', 'ext4.ko', 'loop.ko']));
  });

  it("the serial console shows udhcpc's lease and then the installer's first log line, from Node 18", async () => {
    const firstLine = /\{"level":\d+[^\n]*\n/;
    let b: Boot | undefined;
    if (existsSync('/dev/kvm')) b = await boot('kvm', firstLine, 120_000, 30_000);
    if (!b?.reached) b = await boot('tcg', firstLine, 400_000, 120_000);
    expect(b.reached, `no installer log line on the console (${b.accel}):\n${b.console.slice(-3000)}`).toBe(true);
    const lines = b.console.split(/\r?\n/);
    const first = lines.find((l) => l.startsWith('{"level"'))!;
    const log = JSON.parse(first) as Record<string, unknown>;
    expect(log).toMatchObject({ level: 30, app: 'tips-installer', msg: 'tips-installer starting', boot: 'http://10.0.2.2:9', jobId: 'p1j_smoke', disk: '/dev/vda' });
    expect(String(log.node)).toMatch(/^v18\./);
    // /init brought the virtio NIC up with udhcpc before the installer started.
    const lease = lines.findIndex((l) => /^tips-init: eth0 has 10\.0\.2\.\d+/.test(l));
    expect(lease, b.console.slice(-3000)).toBeGreaterThanOrEqual(0);
    expect(lease).toBeLessThan(lines.indexOf(first));
    // The token never reaches the console log.
    expect(first).not.toContain(TOKEN);
  }, 600_000);
});
