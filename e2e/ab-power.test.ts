/**
 * Issue 9 test 3 (D2): the rootfs-ab handler in a real process on two loop devices, killed with
 * SIGKILL while writing, while switching and during the health check; the next start (a new
 * process calling recover()) must end on a slot that works, with the bootloader pointing at it and
 * an outcome that says what happened.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ROOT } from './helpers.ts';

const RUNNER = join(ROOT, 'e2e/ab-runner.ts');
const MiB = 1 << 20;
const HEALTH = ['sh', '-c', 'head -c 7 "$TIPS_SLOT_DEVICE" | grep -q HEALTHY || { echo "slot $TIPS_SLOT does not start with HEALTHY" >&2; exit 1; }'];

interface RunResult {
  install?: 'committed' | 'rejected';
  recover?: 'clean' | 'finished' | 'rolled_back';
  code?: string;
  outcome: { result: string; reason: string | null; code?: string; slot: string; glaze: { version: string } | null } | null;
  record: { selected: string; committed: string; previous: string | null; trial: unknown; slots: Record<string, { glaze: { version: string } } | null> };
}

let dir: string;
let stateDir: string;
let loops: string[] = [];
let bootConf: string;
const children: ChildProcess[] = [];

const extlinux = (def: string) =>
  `DEFAULT ${def}\nTIMEOUT 1\nLABEL tips-a\n  KERNEL /a/vmlinuz\n  APPEND root=PARTLABEL=root-a tips.slot=a\nLABEL tips-b\n  KERNEL /b/vmlinuz\n  APPEND root=PARTLABEL=root-b tips.slot=b\n`;
const bootDefault = () => /^DEFAULT (\S+)$/m.exec(readFileSync(bootConf, 'utf8'))![1];

function configure(extra: Record<string, unknown> = {}) {
  mkdirSync(join(stateDir, 'rootfs-ab'), { recursive: true });
  writeFileSync(
    join(stateDir, 'rootfs-ab/slots.json'),
    JSON.stringify({
      slots: { a: loops[0], b: loops[1] },
      bootloader: { kind: 'extlinux', file: bootConf },
      // What a power cut leaves is what the bootloader boots next: the test's stand-in for a reboot.
      bootedSlot: 'bootloader',
      healthCheck: { command: HEALTH },
      healthAttempts: 1,
      healthIntervalMs: 0,
      ...extra,
    }),
  );
}

/** A 4 MiB image whose first bytes decide the health check; its Glaze description beside it. */
function image(version: string, head: 'HEALTHY' | 'BROKEN!') {
  const body = Buffer.alloc(4 * MiB);
  for (let i = 0; i < body.length; i += 32) body.write(`${version}:${i}`.padEnd(32, '.'), i);
  body.write(head, 0);
  const path = join(dir, `${version}.img`);
  writeFileSync(path, body);
  const glaze = { id: `glz_${version}`, name: 'rootfs', version, sha256: createHash('sha256').update(body).digest('hex') };
  writeFileSync(`${path}.json`, JSON.stringify(glaze));
  return { path, body, glaze };
}

function start(args: string[], pause?: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', RUNNER, ...args], {
    cwd: ROOT,
    env: { ...process.env, TIPS_AB_PAUSE: pause ?? '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => {
    out += d;
  });
  child.stderr!.on('data', (d) => {
    err += d;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('exit', (code, signal) => r({ code, signal })));
  return { child, exited, out: () => out, err: () => err };
}

/** Runs the runner to its end and returns its JSON result. */
async function run(args: string[]): Promise<RunResult> {
  const p = start(args);
  const { code } = await p.exited;
  if (code !== 0) throw new Error(`runner ${args.join(' ')} exited ${code}: ${p.err()}`);
  return JSON.parse(p.out().trim().split('\n').at(-1)!);
}

/** Starts the runner, waits until it reaches `phase`, and kills it with SIGKILL there. */
async function killAt(args: string[], phase: 'writing' | 'switching' | 'checking'): Promise<void> {
  const p = start(args, phase);
  const deadline = Date.now() + 90_000;
  while (!p.out().includes(`PAUSED ${phase}`)) {
    if (p.child.exitCode !== null) throw new Error(`runner ended before ${phase}: ${p.out()} ${p.err()}`);
    if (Date.now() > deadline) throw new Error(`runner never reached ${phase}: ${p.err()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  p.child.kill('SIGKILL');
  expect((await p.exited).signal).toBe('SIGKILL');
}

const install = (img: { path: string }) => ['install', stateDir, img.path, `${img.path}.json`];

function readDevice(dev: string, length: number): Buffer {
  execFileSync('blockdev', ['--flushbufs', dev]);
  const fd = openSync(dev, 'r');
  try {
    const buf = Buffer.alloc(length);
    readSync(fd, buf, 0, length, 0);
    return buf;
  } finally {
    closeSync(fd);
  }
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tips-ab-e2e-'));
  stateDir = join(dir, 'state');
  bootConf = join(dir, 'boot/extlinux.conf');
  mkdirSync(join(dir, 'boot'));
  writeFileSync(bootConf, extlinux('tips-a'));
  loops = ['a', 'b'].map((s) => {
    const file = join(dir, `slot-${s}.raw`);
    writeFileSync(file, Buffer.alloc(8 * MiB));
    return execFileSync('losetup', ['--find', '--show', file], { encoding: 'utf8' }).trim();
  });
});

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const l of loops) execFileSync('losetup', ['-d', l]);
  loops = [];
  rmSync(dir, { recursive: true, force: true });
});

describe('D2 A/B install on loop devices (issue 9 test 3): kill -9 at every phase', () => {
  it('a failing health check rolls back by itself; a good image commits', async () => {
    configure();
    const bad = image('v2-bad', 'BROKEN!');
    const r = await run(install(bad));
    expect(r).toMatchObject({ install: 'rejected', code: 'health_check_failed', outcome: { result: 'rolled_back', slot: 'a' }, record: { selected: 'a', committed: 'a', trial: null } });
    expect(r.outcome!.reason).toMatch(/exited 1: slot b does not start with HEALTHY/);
    expect(bootDefault()).toBe('tips-a');

    const good = image('v2', 'HEALTHY');
    expect(await run(install(good))).toMatchObject({ install: 'committed', outcome: { result: 'installed', slot: 'b' }, record: { selected: 'b', committed: 'b' } });
    expect(bootDefault()).toBe('tips-b');
    expect(readDevice(loops[1]!, good.body.length).equals(good.body)).toBe(true);
  });

  it('killed while writing slot b: the next start rolls back, slot a boots, and a new install still works', async () => {
    configure();
    const v2 = image('v2', 'HEALTHY');
    await killAt(install(v2), 'writing');
    // The kill landed mid-write: the first MiB is on slot b, the rest is not.
    const onDisk = readDevice(loops[1]!, 4 * MiB);
    expect(onDisk.subarray(0, MiB).equals(v2.body.subarray(0, MiB))).toBe(true);
    expect(onDisk.subarray(3 * MiB).equals(v2.body.subarray(3 * MiB))).toBe(false);
    expect(bootDefault()).toBe('tips-a');

    const r = await run(['recover', stateDir]);
    expect(r).toMatchObject({ recover: 'rolled_back', outcome: { result: 'rolled_back', code: 'interrupted', slot: 'a' }, record: { selected: 'a', committed: 'a', trial: null, slots: { b: null } } });
    expect(r.outcome!.reason).toMatch(/interrupted while writing slot b/);
    expect(bootDefault()).toBe('tips-a');
    expect(existsSync(join(stateDir, 'rootfs-ab/journal.json'))).toBe(false);
    expect((await run(['recover', stateDir])).recover).toBe('clean');

    expect(await run(install(v2))).toMatchObject({ install: 'committed', record: { selected: 'b' } });
    expect(bootDefault()).toBe('tips-b');
  });

  it('killed during the switch, before the bootloader followed: slot a still boots, the next start rolls back', async () => {
    configure();
    const v2 = image('v2', 'HEALTHY');
    await killAt(install(v2), 'switching');
    expect(JSON.parse(readFileSync(join(stateDir, 'rootfs-ab/boot.json'), 'utf8'))).toMatchObject({ selected: 'b', trial: { slot: 'b' } });
    expect(bootDefault()).toBe('tips-a');

    const r = await run(['recover', stateDir]);
    expect(r).toMatchObject({ recover: 'rolled_back', outcome: { result: 'rolled_back', code: 'wrong_slot_booted', slot: 'a' }, record: { selected: 'a', committed: 'a', trial: null } });
    expect(r.outcome!.reason).toMatch(/slot a booted, not the trial slot b/);
    expect(bootDefault()).toBe('tips-a');
  });

  it('killed during the switch when the record is the switch (no bootloader): the next start checks slot b and commits', async () => {
    configure({ bootloader: { kind: 'none' }, bootedSlot: 'record' });
    const v2 = image('v2', 'HEALTHY');
    await killAt(install(v2), 'switching');
    const r = await run(['recover', stateDir]);
    expect(r).toMatchObject({ recover: 'finished', outcome: { result: 'installed', slot: 'b', glaze: { version: 'v2' } }, record: { selected: 'b', committed: 'b', previous: 'a', trial: null } });
  });

  it('killed during the health check: the next start counts a boot, checks again and commits a good image', async () => {
    configure();
    const v2 = image('v2', 'HEALTHY');
    await killAt(install(v2), 'checking');
    expect(bootDefault()).toBe('tips-b');
    const r = await run(['recover', stateDir]);
    expect(r).toMatchObject({ recover: 'finished', outcome: { result: 'installed', slot: 'b' }, record: { selected: 'b', committed: 'b', trial: null, slots: { b: { glaze: { version: 'v2' } } } } });
    expect(bootDefault()).toBe('tips-b');
  });

  it('killed during the health check of a bad image: the next start rolls back with the check as the reason', async () => {
    configure();
    const bad = image('v2-bad', 'BROKEN!');
    await killAt(install(bad), 'checking');
    expect(bootDefault()).toBe('tips-b');
    const r = await run(['recover', stateDir]);
    expect(r).toMatchObject({ recover: 'rolled_back', outcome: { result: 'rolled_back', code: 'health_check_failed', slot: 'a' }, record: { selected: 'a', trial: null } });
    expect(r.outcome!.reason).toMatch(/slot b does not start with HEALTHY/);
    expect(bootDefault()).toBe('tips-a');
  });

  it('killed in every health check until the tries run out: the next start rolls back', async () => {
    configure({ maxTries: 2 });
    const v2 = image('v2', 'HEALTHY');
    await killAt(install(v2), 'checking');
    await killAt(['recover', stateDir], 'checking');
    const r = await run(['recover', stateDir]);
    expect(r).toMatchObject({ recover: 'rolled_back', outcome: { result: 'rolled_back', code: 'tries_exhausted', slot: 'a' }, record: { selected: 'a', committed: 'a', trial: null, slots: { b: null } } });
    expect(r.outcome!.reason).toMatch(/used all 2 boot tries/);
    expect(bootDefault()).toBe('tips-a');
  });

  it('manual rollback (tips metal rollback) boots the previous committed slot again, checked by its digest', async () => {
    configure();
    const v2 = image('v2', 'HEALTHY');
    const v3 = image('v3', 'HEALTHY');
    expect((await run(install(v2))).record).toMatchObject({ selected: 'b' });
    expect((await run(install(v3))).record).toMatchObject({ selected: 'a', previous: 'b' });
    expect(bootDefault()).toBe('tips-a');
    const back = (await run(['rollback', stateDir])) as RunResult & { rollback: { result: string; slot: string; reason: string } };
    expect(back.rollback).toMatchObject({ result: 'rolled_back', slot: 'b' });
    expect(back.rollback.reason).toMatch(/manual rollback from slot a \(rootfs@v3\) to slot b \(rootfs@v2\)/);
    expect(back.record).toMatchObject({ selected: 'b', committed: 'b', previous: 'a' });
    expect(bootDefault()).toBe('tips-b');
  });
});
