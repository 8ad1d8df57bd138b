import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bootedSlot, slotFromCmdline } from './rootfs-ab-boot.ts';
import { journalPath, parseSlotConfig, recordPath } from './rootfs-ab-store.ts';
import { abStatus, createRootfsAbHandler, lastOutcome, RootfsAbError, rootfsAb } from './rootfs-ab.ts';
import { InstallError } from './types.ts';

const log = pino({ level: 'silent' });
const SLOT_SIZE = 1 << 20;
// The health check reads the slot it is asked about: an image that starts with HEALTHY passes.
const HEALTH = ['sh', '-c', 'head -c 7 "$TIPS_SLOT_DEVICE" | grep -q HEALTHY || { echo "slot $TIPS_SLOT is unhealthy" >&2; exit 1; }'];

let dir: string;
let stateDir: string;

function image(name: string, head: string, size = 300_000) {
  const body = Buffer.alloc(size, name);
  body.write(head, 0);
  const path = join(dir, `${name}.img`);
  writeFileSync(path, body);
  return { path, glaze: { id: `glz_${name}`, name: 'rootfs', version: name, sha256: createHash('sha256').update(body).digest('hex') } };
}

function configure(extra: Record<string, unknown> = {}) {
  mkdirSync(join(stateDir, 'rootfs-ab'), { recursive: true });
  writeFileSync(
    join(stateDir, 'rootfs-ab/slots.json'),
    JSON.stringify({ slots: { a: join(dir, 'slot-a'), b: join(dir, 'slot-b') }, healthCheck: { command: HEALTH }, healthIntervalMs: 0, healthAttempts: 1, ...extra }),
  );
}

const extlinux = (def: string) =>
  `DEFAULT ${def}\nTIMEOUT 1\nLABEL tips-a\n  KERNEL /a/vmlinuz\n  APPEND root=PARTLABEL=root-a tips.slot=a\nLABEL tips-b\n  KERNEL /b/vmlinuz\n  APPEND root=PARTLABEL=root-b tips.slot=b\n`;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tips-ab-'));
  stateDir = join(dir, 'state');
  writeFileSync(join(dir, 'slot-a'), Buffer.alloc(SLOT_SIZE));
  writeFileSync(join(dir, 'slot-b'), Buffer.alloc(SLOT_SIZE));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('D2 rootfs-ab: slot configuration', () => {
  it('refuses a bad slots.json naming the field', () => {
    const ok = { slots: { a: '/dev/sda2', b: '/dev/sda3' }, healthCheck: { url: 'http://127.0.0.1/healthz' } };
    const field = (raw: unknown) => {
      try {
        parseSlotConfig(raw);
        return 'accepted';
      } catch (e) {
        expect(e).toBeInstanceOf(RootfsAbError);
        expect((e as RootfsAbError).abCode).toBe('config_invalid');
        return (e as RootfsAbError).field;
      }
    };
    expect(field(ok)).toBe('accepted');
    expect(field({ ...ok, slots: { a: '/dev/sda2' } })).toBe('slots.b');
    expect(field({ ...ok, slots: { a: '/dev/sda2', b: '/dev/sda2' } })).toBe('slots.b');
    expect(field({ ...ok, slots: { a: 'sda2', b: '/dev/sda3' } })).toBe('slots.a');
    expect(field({ ...ok, healthCheck: {} })).toBe('healthCheck');
    expect(field({ ...ok, healthCheck: { url: 'ftp://x/' } })).toBe('healthCheck.url');
    expect(field({ ...ok, healthCheck: { command: 'true' } })).toBe('healthCheck.command');
    expect(field({ ...ok, maxTries: 0 })).toBe('maxTries');
    expect(field({ ...ok, bootloader: { kind: 'grub' } })).toBe('bootloader.kind');
    expect(field({ ...ok, bootloader: { kind: 'extlinux', file: '/boot/extlinux.conf', labels: { a: 'x', b: 'x' } } })).toBe('bootloader.labels.b');
    expect(field({ ...ok, bootedSlot: 'bootloader' })).toBe('bootedSlot');
    expect(field({ ...ok, reboot: [] })).toBe('reboot');
  });

  it('learns the booted slot from tips.slot= on the kernel command line', () => {
    expect(slotFromCmdline('BOOT_IMAGE=/b/vmlinuz root=PARTLABEL=root-b ro tips.slot=b quiet')).toBe('b');
    expect(slotFromCmdline('root=/dev/sda2 xtips.slot=a')).toBeUndefined();
    writeFileSync(join(dir, 'cmdline'), 'root=/dev/sda3 tips.slot=b\n');
    const config = parseSlotConfig({ slots: { a: '/x/a', b: '/x/b' }, healthCheck: { url: 'http://h/' }, bootedSlot: 'cmdline', cmdlineFile: join(dir, 'cmdline') });
    expect(bootedSlot(config, { selected: 'a', committed: 'a', previous: null, trial: null, slots: { a: null, b: null } })).toBe('b');
  });
});

describe('D2 rootfs-ab: install, health check, automatic and manual rollback', () => {
  it('writes the inactive slot, switches, passes the health check and commits', async () => {
    configure();
    const v1 = image('v1', 'HEALTHY');
    await expect(rootfsAb.install({ payloadPath: v1.path, glaze: v1.glaze, stateDir, log })).resolves.toEqual({ committed: true });
    expect(readFileSync(join(dir, 'slot-b')).subarray(0, 300_000).equals(readFileSync(v1.path))).toBe(true);
    expect(abStatus(stateDir)).toMatchObject({ selected: 'b', committed: 'b', previous: 'a', trial: null, slots: { a: null, b: { glaze: v1.glaze } } });
    expect(lastOutcome(stateDir)).toMatchObject({ glaze: v1.glaze, result: 'installed', reason: null, slot: 'b' });
    expect(existsSync(journalPath(stateDir))).toBe(false);
    expect(await rootfsAb.recover(stateDir, log)).toBe('clean');
  });

  it('rolls back by itself when the health check fails, and the failed slot is no rollback target', async () => {
    configure();
    const bad = image('bad', 'BROKEN!');
    const err = await rootfsAb.install({ payloadPath: bad.path, glaze: bad.glaze, stateDir, log }).catch((e) => e);
    expect(err).toBeInstanceOf(RootfsAbError);
    expect(err.abCode).toBe('health_check_failed');
    // What the agent reads (contract D): an InstallError it reports as rolled back.
    expect(err).toBeInstanceOf(InstallError);
    expect(err.code).toBe('health_check_failed');
    expect(abStatus(stateDir)).toMatchObject({ selected: 'a', committed: 'a', trial: null, slots: { b: null } });
    expect(lastOutcome(stateDir)).toMatchObject({ result: 'rolled_back', code: 'health_check_failed', slot: 'a' });
    expect(lastOutcome(stateDir)!.reason).toMatch(/exited 1: slot b is unhealthy/);
    await expect(rootfsAb.rollback(stateDir, log)).rejects.toMatchObject({ abCode: 'no_previous_slot' });
  });

  it('switches extlinux DEFAULT to the slot that boots, back on rollback', async () => {
    const conf = join(dir, 'extlinux.conf');
    writeFileSync(conf, extlinux('tips-a'));
    configure({ bootloader: { kind: 'extlinux', file: conf }, bootedSlot: 'bootloader' });
    const v1 = image('v1', 'HEALTHY');
    await rootfsAb.install({ payloadPath: v1.path, glaze: v1.glaze, stateDir, log });
    expect(readFileSync(conf, 'utf8')).toBe(extlinux('tips-b'));
    const bad = image('bad', 'BROKEN!');
    await expect(rootfsAb.install({ payloadPath: bad.path, glaze: bad.glaze, stateDir, log })).rejects.toMatchObject({ abCode: 'health_check_failed' });
    expect(readFileSync(conf, 'utf8')).toBe(extlinux('tips-b'));
    expect(abStatus(stateDir)).toMatchObject({ selected: 'b', committed: 'b' });
  });

  it('refuses an extlinux.conf without the slot labels, before anything boots elsewhere', async () => {
    const conf = join(dir, 'extlinux.conf');
    writeFileSync(conf, 'DEFAULT linux\nLABEL linux\n  KERNEL /vmlinuz\n');
    configure({ bootloader: { kind: 'extlinux', file: conf } });
    const v1 = image('v1', 'HEALTHY');
    await expect(rootfsAb.install({ payloadPath: v1.path, glaze: v1.glaze, stateDir, log })).rejects.toMatchObject({ abCode: 'config_invalid', field: 'bootloader.labels.a' });
    expect(readFileSync(conf, 'utf8')).toBe('DEFAULT linux\nLABEL linux\n  KERNEL /vmlinuz\n');
    // Refused before the first byte: slot b and the state dir are untouched.
    expect(readFileSync(join(dir, 'slot-b')).equals(Buffer.alloc(SLOT_SIZE))).toBe(true);
    expect(existsSync(journalPath(stateDir))).toBe(false);
    expect(existsSync(recordPath(stateDir))).toBe(false);
  });

  it('a slot that reads back other bytes than were written fails the install; slot a keeps booting', async () => {
    configure();
    const v1 = image('v1', 'HEALTHY');
    const flaky = createRootfsAbHandler({
      onProgress: (p) => {
        // The medium loses a byte between the write and the read-back.
        if (p.phase === 'verifying') writeFileSync(join(dir, 'slot-b'), Buffer.from('X'), { flag: 'r+' });
      },
    });
    await expect(flaky.install({ payloadPath: v1.path, glaze: v1.glaze, stateDir, log })).rejects.toMatchObject({ abCode: 'verify_failed' });
    expect(abStatus(stateDir)).toMatchObject({ selected: 'a', committed: 'a', trial: null, slots: { b: null } });
    expect(lastOutcome(stateDir)).toMatchObject({ result: 'failed', code: 'verify_failed', slot: 'a' });
    expect(existsSync(journalPath(stateDir))).toBe(false);
  });

  it('an I/O error on the slot ends the install as failed (InstallError), not half done', async () => {
    configure({ slots: { a: join(dir, 'slot-a'), b: dir } });
    const v1 = image('v1', 'HEALTHY', 1000);
    const err = await rootfsAb.install({ payloadPath: v1.path, glaze: v1.glaze, stateDir, log }).catch((e) => e);
    expect(err).toBeInstanceOf(RootfsAbError);
    expect(err.abCode).toBe('io_failed');
    expect(err).toBeInstanceOf(InstallError);
    expect(err.code).toBe('write_failed');
    expect(err.message).toMatch(/EISDIR/);
    expect(lastOutcome(stateDir)).toMatchObject({ result: 'failed', code: 'io_failed', slot: 'a' });
    expect(existsSync(journalPath(stateDir))).toBe(false);
    expect(await rootfsAb.recover(stateDir, log)).toBe('clean');
  });

  it('a payload that is not the Glaze fails without switching; an image larger than the slot changes nothing', async () => {
    configure();
    const v1 = image('v1', 'HEALTHY');
    const err = await rootfsAb.install({ payloadPath: v1.path, glaze: { ...v1.glaze, sha256: '0'.repeat(64) }, stateDir, log }).catch((e) => e);
    expect(err.abCode).toBe('payload_mismatch');
    expect(abStatus(stateDir)).toMatchObject({ selected: 'a', trial: null, slots: { b: null } });
    expect(lastOutcome(stateDir)).toMatchObject({ result: 'failed', code: 'payload_mismatch' });

    const before = readFileSync(recordPath(stateDir), 'utf8');
    const big = image('big', 'HEALTHY', SLOT_SIZE + 1);
    await expect(rootfsAb.install({ payloadPath: big.path, glaze: big.glaze, stateDir, log })).rejects.toMatchObject({ abCode: 'slot_too_small' });
    expect(readFileSync(recordPath(stateDir), 'utf8')).toBe(before);
    expect(existsSync(journalPath(stateDir))).toBe(false);
  });

  it('checks an HTTP health URL: 503 rolls back, 204 commits', async () => {
    let status = 503;
    const server: Server = createServer((_req, res) => res.writeHead(status).end());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      configure({ healthCheck: { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/healthz` } });
      const v1 = image('v1', 'HEALTHY');
      await expect(rootfsAb.install({ payloadPath: v1.path, glaze: v1.glaze, stateDir, log })).rejects.toMatchObject({ abCode: 'health_check_failed' });
      expect(lastOutcome(stateDir)!.reason).toMatch(/answered 503/);
      status = 204;
      await expect(rootfsAb.install({ payloadPath: v1.path, glaze: v1.glaze, stateDir, log })).resolves.toEqual({ committed: true });
      expect(abStatus(stateDir).selected).toBe('b');
    } finally {
      server.close();
    }
  });

  it('manual rollback boots the previously committed slot, only while it still holds its image', async () => {
    configure();
    const v1 = image('v1', 'HEALTHY');
    const v2 = image('v2', 'HEALTHY');
    await rootfsAb.install({ payloadPath: v1.path, glaze: v1.glaze, stateDir, log });
    await rootfsAb.install({ payloadPath: v2.path, glaze: v2.glaze, stateDir, log });
    expect(abStatus(stateDir)).toMatchObject({ selected: 'a', committed: 'a', previous: 'b' });
    const outcome = await rootfsAb.rollback(stateDir, log);
    expect(outcome).toMatchObject({ result: 'rolled_back', slot: 'b', glaze: v2.glaze });
    expect(outcome.reason).toMatch(/manual rollback from slot a \(rootfs@v2\) to slot b \(rootfs@v1\)/);
    expect(abStatus(stateDir)).toMatchObject({ selected: 'b', committed: 'b', previous: 'a' });
    // Slot a (v2) is intact: rolling back again returns to it. Then corrupt slot b and try once more.
    await rootfsAb.rollback(stateDir, log);
    expect(abStatus(stateDir)).toMatchObject({ selected: 'a', previous: 'b' });
    writeFileSync(join(dir, 'slot-b'), Buffer.alloc(SLOT_SIZE, 'x'));
    await expect(rootfsAb.rollback(stateDir, log)).rejects.toMatchObject({ abCode: 'previous_slot_invalid' });
    expect(abStatus(stateDir)).toMatchObject({ selected: 'a', committed: 'a', previous: null, slots: { b: null } });
  });

  it('an install while a trial is pending is refused until recover() ran', async () => {
    configure();
    const v1 = image('v1', 'HEALTHY');
    let stop = false;
    const paused = createRootfsAbHandler({
      onProgress: (p) => {
        if (p.phase === 'checking') {
          stop = true;
          return new Promise(() => {});
        }
      },
    });
    void paused.install({ payloadPath: v1.path, glaze: v1.glaze, stateDir, log });
    while (!stop) await new Promise((r) => setTimeout(r, 10));
    await expect(rootfsAb.install({ payloadPath: v1.path, glaze: v1.glaze, stateDir, log })).rejects.toMatchObject({ abCode: 'install_in_progress' });
    expect(await rootfsAb.recover(stateDir, log)).toBe('finished');
    expect(abStatus(stateDir)).toMatchObject({ selected: 'b', committed: 'b', trial: null });
  });
});

describe('D2 rootfs-ab: recover() after an interruption at each phase (in-process; the SIGKILL runs are e2e/ab-power.test.ts)', () => {
  /** A handler that stops for good at `phase` (the process "dies" there; its promise never settles). */
  function stoppingAt(phase: 'writing' | 'switching' | 'checking') {
    const reached = { yes: false };
    const handler = createRootfsAbHandler({
      onProgress: (p) => {
        if (p.phase === phase && (p.phase !== 'writing' || p.bytes < p.total) && (p.phase !== 'switching' || p.step === 'record')) {
          reached.yes = true;
          return new Promise(() => {});
        }
      },
    });
    return { handler, reached };
  }
  async function interrupt(phase: 'writing' | 'switching' | 'checking', run: (h: ReturnType<typeof createRootfsAbHandler>) => Promise<unknown>) {
    const s = stoppingAt(phase);
    void run(s.handler);
    while (!s.reached.yes) await new Promise((r) => setTimeout(r, 5));
  }

  it('interrupted while writing: rolled back, the half-written slot is invalid', async () => {
    configure();
    const v1 = image('v1', 'HEALTHY', 3 << 20);
    writeFileSync(join(dir, 'slot-b'), Buffer.alloc(4 << 20));
    await interrupt('writing', (h) => h.install({ payloadPath: v1.path, glaze: v1.glaze, stateDir, log }));
    expect(abStatus(stateDir)).toMatchObject({ selected: 'a', trial: null });
    expect(await rootfsAb.recover(stateDir, log)).toBe('rolled_back');
    expect(lastOutcome(stateDir)).toMatchObject({ result: 'rolled_back', code: 'interrupted', slot: 'a' });
    expect(abStatus(stateDir)).toMatchObject({ selected: 'a', committed: 'a', slots: { b: null } });
  });

  it('interrupted between the boot record and the bootloader: the bootloader decides what booted', async () => {
    const conf = join(dir, 'extlinux.conf');
    writeFileSync(conf, extlinux('tips-a'));
    configure({ bootloader: { kind: 'extlinux', file: conf }, bootedSlot: 'bootloader' });
    const v1 = image('v1', 'HEALTHY');
    await interrupt('switching', (h) => h.install({ payloadPath: v1.path, glaze: v1.glaze, stateDir, log }));
    expect(await rootfsAb.recover(stateDir, log)).toBe('rolled_back');
    expect(lastOutcome(stateDir)).toMatchObject({ code: 'wrong_slot_booted' });
    expect(readFileSync(conf, 'utf8')).toBe(extlinux('tips-a'));
    expect(abStatus(stateDir)).toMatchObject({ selected: 'a', trial: null });
  });

  it('interrupted in every health check: each start counts a try, the last one rolls back', async () => {
    configure({ maxTries: 2 });
    const v1 = image('v1', 'HEALTHY');
    await interrupt('checking', (h) => h.install({ payloadPath: v1.path, glaze: v1.glaze, stateDir, log }));
    expect(abStatus(stateDir).trial).toMatchObject({ slot: 'b', triesLeft: 1 });
    await interrupt('checking', (h) => h.recover(stateDir, log));
    expect(abStatus(stateDir).trial).toMatchObject({ slot: 'b', triesLeft: 0 });
    expect(await rootfsAb.recover(stateDir, log)).toBe('rolled_back');
    expect(lastOutcome(stateDir)).toMatchObject({ result: 'rolled_back', code: 'tries_exhausted', slot: 'a' });
    expect(abStatus(stateDir)).toMatchObject({ selected: 'a', committed: 'a', trial: null, slots: { b: null } });
  });

  it('interrupted while applying the end state: the next start writes it again and reports it', async () => {
    configure();
    const v1 = image('v1', 'HEALTHY');
    await rootfsAb.install({ payloadPath: v1.path, glaze: v1.glaze, stateDir, log });
    const committed = readFileSync(recordPath(stateDir), 'utf8');
    // As if the kill came after the intent was logged but before the record was replaced.
    const intent = { phase: 'applying', next: JSON.parse(committed), outcome: lastOutcome(stateDir) };
    writeFileSync(recordPath(stateDir), JSON.stringify({ ...JSON.parse(committed), selected: 'a', committed: 'a', trial: { slot: 'b', glaze: v1.glaze, size: 300_000, triesLeft: 1 } }));
    writeFileSync(journalPath(stateDir), JSON.stringify(intent));
    expect(await rootfsAb.recover(stateDir, log)).toBe('finished');
    expect(readFileSync(recordPath(stateDir), 'utf8')).toBe(committed);
    expect(existsSync(journalPath(stateDir))).toBe(false);
  });
});
