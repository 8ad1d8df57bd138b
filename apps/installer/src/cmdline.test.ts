import { describe, expect, it } from 'vitest';
import { DEFAULT_STATE_DIR, parseOptions, splitCmdline, tipsParams } from './cmdline.ts';
import { InstallerError } from './errors.ts';
import { memAvailable, spoolBytes } from './installer.ts';

const TOKEN = 'q3Zp0fN0Yx8bA1c2D3e4F5g6H7i8J9k0L1m2N3o4P5Q';
const IPXE = `BOOT_IMAGE=vmlinuz console=ttyS0,115200 console=tty0 tips.boot=http://192.168.50.1:8080 tips.job=p1j_abc tips.token=${TOKEN} initrd=initrd.img\n`;

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return e instanceof InstallerError ? `${e.code}:${e.message.split(':')[0]}` : 'other';
  }
  return undefined;
}

describe('T13 Phase 1: installer options from the kernel command line (A3 script) and flags', () => {
  it('reads what the per-metal iPXE script puts on the command line', () => {
    const o = parseOptions([], IPXE);
    expect(o).toEqual({ bootUrl: 'http://192.168.50.1:8080', jobId: 'p1j_abc', token: TOKEN, disk: null, stateDir: DEFAULT_STATE_DIR, reboot: true, logLevel: 'info', spoolBudget: { percent: 25 } });
  });

  it('tips.disk names the target; flags override the command line', () => {
    expect(parseOptions([], `${IPXE} tips.disk=/dev/nvme0n1`).disk).toBe('/dev/nvme0n1');
    const o = parseOptions(['--boot-url', 'http://10.1.2.3:9/', '--disk=/tmp/disk.img', '--no-reboot', '--state-dir', '/tmp/s'], IPXE);
    expect(o.bootUrl).toBe('http://10.1.2.3:9');
    expect(o.disk).toBe('/tmp/disk.img');
    expect(o.reboot).toBe(false);
    expect(o.stateDir).toBe('/tmp/s');
    expect(o.token).toBe(TOKEN);
  });

  it('tips.spool / --spool-budget: a share of MemAvailable or bytes (K, M, G), 0 = never; anything else refused naming tips.spool', () => {
    expect(parseOptions([], `${IPXE} tips.spool=40%`).spoolBudget).toEqual({ percent: 40 });
    expect(parseOptions([], `${IPXE} tips.spool=1536M`).spoolBudget).toEqual({ bytes: 1536 * 2 ** 20 });
    expect(parseOptions(['--spool-budget', '2G'], `${IPXE} tips.spool=1K`).spoolBudget).toEqual({ bytes: 2 * 2 ** 30 });
    expect(parseOptions(['--spool-budget=0'], IPXE).spoolBudget).toEqual({ bytes: 0 });
    for (const bad of ['lots', '95%', '-1', '1.5G', '2T', '%']) expect(codeOf(() => parseOptions(['--spool-budget', bad], IPXE))).toBe('bad_cmdline:tips.spool');
    expect(spoolBytes({ percent: 25 }, 8 * 2 ** 30)).toBe(2 * 2 ** 30);
    expect(spoolBytes({ bytes: 123 }, 0)).toBe(123);
    expect(spoolBytes({ percent: 25 }, 0)).toBe(0);
    expect(memAvailable('/nonexistent')).toBe(0);
    expect(memAvailable()).toBeGreaterThan(0);
  });

  it('--cmdline replaces /proc/cmdline', () => {
    expect(parseOptions(['--cmdline', `tips.boot=http://h:1 tips.token=${TOKEN}`], IPXE).bootUrl).toBe('http://h:1');
  });

  it('splits like the kernel: quotes group, later parameters win', () => {
    expect(splitCmdline('a  "b c"=d e="f g"\n')).toEqual(['a', 'b c=d', 'e=f g']);
    expect(tipsParams('tips.job=1 foo=bar tips.job=2 tips.x').get('job')).toBe('2');
    expect(tipsParams('tips.job=1 foo=bar tips.x').has('x')).toBe(false);
  });

  it('refuses, naming the field: missing or bad boot URL, token, job, disk, flags', () => {
    expect(codeOf(() => parseOptions([], `tips.token=${TOKEN}`))).toBe('bad_cmdline:tips.boot');
    expect(codeOf(() => parseOptions([], `tips.boot=ftp://x tips.token=${TOKEN}`))).toBe('bad_cmdline:tips.boot');
    expect(codeOf(() => parseOptions([], `tips.boot=nonsense tips.token=${TOKEN}`))).toBe('bad_cmdline:tips.boot');
    expect(codeOf(() => parseOptions([], `tips.boot=http://u:p@h/ tips.token=${TOKEN}`))).toBe('bad_cmdline:tips.boot');
    expect(codeOf(() => parseOptions([], 'tips.boot=http://h:1'))).toBe('bad_cmdline:tips.token');
    expect(codeOf(() => parseOptions([], 'tips.boot=http://h:1 tips.token=short'))).toBe('bad_cmdline:tips.token');
    expect(codeOf(() => parseOptions([], `tips.boot=http://h:1 tips.token=${TOKEN}$`))).toBe('bad_cmdline:tips.token');
    expect(codeOf(() => parseOptions([], `tips.boot=http://h:1 tips.token=${TOKEN} tips.job=a/b`))).toBe('bad_cmdline:tips.job');
    expect(codeOf(() => parseOptions([], `tips.boot=http://h:1 tips.token=${TOKEN} tips.disk=vda`))).toBe('bad_cmdline:tips.disk');
    expect(codeOf(() => parseOptions(['--bogus', 'x'], IPXE))).toBe('bad_cmdline:--bogus');
    expect(codeOf(() => parseOptions(['--disk'], IPXE))).toBe('bad_cmdline:--disk');
    expect(codeOf(() => parseOptions(['--disk', '--no-reboot'], IPXE))).toBe('bad_cmdline:--disk');
    expect(codeOf(() => parseOptions(['--log-level', 'loud'], IPXE))).toBe('bad_cmdline:--log-level');
    expect(codeOf(() => parseOptions(['--state-dir', 'rel'], IPXE))).toBe('bad_cmdline:--state-dir');
  });
});
