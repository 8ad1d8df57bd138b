/**
 * The `rootfs-ab` install handler (D2): two root-filesystem slots; an update is written to the
 * inactive slot and verified by reading it back, then the boot selection switches to it as a
 * trial with a number of tries; each boot of the trial counts one try and runs the health check;
 * the first pass commits, a failed check or exhausted tries roll back to the committed slot.
 *
 * Power safety comes from a write-ahead journal (rootfs-ab/journal.json) and an atomically replaced
 * boot record (rootfs-ab/boot.json). The journal's phase says what a kill interrupted:
 *   writing   → the boot record never pointed at the half-written slot: roll back (invalidate it);
 *   switching → the switch is the boot record's rename: if it happened the trial goes on, else roll back;
 *   trial     → count a boot, run the health check again (or give up when no tries are left);
 *   applying  → the end state (record, bootloader, outcome) is written again, idempotently.
 * `recover()` at every start therefore always ends on a committed slot with an outcome that says
 * what happened (rootfs-ab/outcome.json, `lastOutcome()`).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import type { Logger } from 'pino';
import { bootedSlot, readBootloader, selectInBootloader } from './rootfs-ab-boot.ts';
import { checkHealth } from './rootfs-ab-health.ts';
import { digestOfSlot, slotCapacity, writeSlot } from './rootfs-ab-slot.ts';
import {
  type BootRecord,
  configPath,
  type GlazeRef,
  type Journal,
  journalPath,
  loadRecord,
  loadSlotConfig,
  type Outcome,
  otherSlot,
  outcomePath,
  RootfsAbError,
  type RootfsAbErrorCode,
  readJsonIfExists,
  recordPath,
  removeDurably,
  type Slot,
  type SlotConfig,
  writeJsonDurably,
} from './rootfs-ab-store.ts';
import type { InstallContext, InstallHandler } from './types.ts';

export { RootfsAbError, type RootfsAbErrorCode } from './rootfs-ab-store.ts';
export type { BootRecord, Outcome, Slot, SlotConfig } from './rootfs-ab-store.ts';

export type RootfsAbProgress =
  | { phase: 'writing'; slot: Slot; bytes: number; total: number }
  | { phase: 'verifying'; slot: Slot }
  /** `record`: the boot record now selects the trial; `bootloader`: the bootloader does too. */
  | { phase: 'switching'; slot: Slot; step: 'record' | 'bootloader' }
  | { phase: 'checking'; slot: Slot; triesLeft: number }
  | { phase: 'rebooting'; slot: Slot };

export interface RootfsAbOptions {
  /** Awaited at every step of an install (progress logs, metrics). */
  onProgress?: (p: RootfsAbProgress) => void | Promise<void>;
}

export interface RootfsAbHandler extends InstallHandler {
  readonly name: 'rootfs-ab';
  /** `tips metal rollback`: boots the previously committed slot again (its digest is checked first). */
  rollback(stateDir: string, log: Logger): Promise<Outcome>;
}

type Active = Extract<Journal, { phase: 'writing' | 'switching' | 'trial' }>;

/** The last install's or rollback's result, for the agent's SUIT report. */
export function lastOutcome(stateDir: string): Outcome | undefined {
  return readJsonIfExists<Outcome>(outcomePath(stateDir));
}

/** The boot record (which slot boots, which is committed, what each holds). */
export function abStatus(stateDir: string): BootRecord {
  return loadRecord(stateDir, loadSlotConfig(stateDir));
}

const now = () => new Date().toISOString();

export function createRootfsAbHandler(opts: RootfsAbOptions = {}): RootfsAbHandler {
  const progress = async (p: RootfsAbProgress) => {
    await opts.onProgress?.(p);
  };

  function reboot(config: SlotConfig, log: Logger, slot: Slot): boolean {
    if (!config.reboot) return false;
    log.warn({ slot, command: config.reboot }, 'rootfs-ab: rebooting into slot %s', slot);
    const r = spawnSync(config.reboot[0]!, config.reboot.slice(1), { stdio: 'ignore', timeout: 60_000 });
    if (r.status !== 0) throw new RootfsAbError('reboot_failed', `reboot command ${config.reboot.join(' ')} failed (${r.error?.message ?? `exit ${r.status}`})`);
    return true;
  }

  /** Writes the end state: journal intent, boot record, bootloader, outcome; then drops the journal. */
  function apply(stateDir: string, config: SlotConfig, log: Logger, next: BootRecord, outcome: Outcome): Outcome {
    writeJsonDurably(journalPath(stateDir), { phase: 'applying', next, outcome } satisfies Journal);
    writeJsonDurably(recordPath(stateDir), next);
    selectInBootloader(config.bootloader, next.selected);
    writeJsonDurably(outcomePath(stateDir), outcome);
    removeDurably(journalPath(stateDir));
    const level = outcome.result === 'installed' ? 'info' : 'warn';
    log[level]({ glazeId: outcome.glaze?.id, slot: next.selected, result: outcome.result, reason: outcome.reason }, 'rootfs-ab: %s', outcome.result);
    return outcome;
  }

  function rollBack(stateDir: string, config: SlotConfig, log: Logger, j: Active, code: RootfsAbErrorCode, reason: string): Outcome {
    const record = loadRecord(stateDir, config);
    const next: BootRecord = { selected: j.from, committed: j.from, previous: null, trial: null, slots: { ...record.slots, [j.target]: null } };
    const result = j.phase === 'writing' && code !== 'interrupted' ? 'failed' : 'rolled_back';
    return apply(stateDir, config, log, next, { glaze: j.glaze, result, reason, code, slot: j.from, at: now() });
  }

  /** One boot of the trial slot: count it, check health, commit or roll back. */
  async function trialBoot(stateDir: string, config: SlotConfig, log: Logger, j: Active, booted: Slot): Promise<Outcome> {
    const record = loadRecord(stateDir, config);
    const trial = record.trial;
    if (!trial || trial.slot !== j.target) return rollBack(stateDir, config, log, j, 'interrupted', `interrupted while switching to slot ${j.target}; slot ${j.from} still boots`);
    if (booted !== trial.slot) {
      return rollBack(stateDir, config, log, j, 'wrong_slot_booted', `slot ${booted} booted, not the trial slot ${trial.slot} (interrupted switch or bootloader fallback)`);
    }
    if (trial.triesLeft <= 0) {
      return rollBack(stateDir, config, log, j, 'tries_exhausted', `slot ${trial.slot} used all ${config.maxTries} boot tries without passing its health check`);
    }
    const triesLeft = trial.triesLeft - 1;
    writeJsonDurably(recordPath(stateDir), { ...record, trial: { ...trial, triesLeft } } satisfies BootRecord);
    if (j.phase !== 'trial') writeJsonDurably(journalPath(stateDir), { ...j, phase: 'trial' } satisfies Journal);
    await progress({ phase: 'checking', slot: trial.slot, triesLeft });
    log.info({ slot: trial.slot, triesLeft, glazeId: j.glaze.id }, 'rootfs-ab: health check of the trial slot');
    const health = await checkHealth(config.healthCheck, { slot: trial.slot, device: config.slots[trial.slot], glaze: j.glaze }, {
      timeoutMs: config.healthTimeoutMs,
      attempts: config.healthAttempts,
      intervalMs: config.healthIntervalMs,
    });
    if (!health.healthy) return rollBack(stateDir, config, log, j, 'health_check_failed', health.reason);
    const next: BootRecord = {
      selected: trial.slot,
      committed: trial.slot,
      previous: j.from,
      trial: null,
      slots: { ...record.slots, [trial.slot]: { glaze: trial.glaze, size: trial.size } },
    };
    return apply(stateDir, config, log, next, { glaze: j.glaze, result: 'installed', reason: null, slot: trial.slot, at: now() });
  }

  /** After an outcome: reboot when this process does not run from the slot that now boots. */
  function rebootIfElsewhere(stateDir: string, config: SlotConfig, log: Logger): void {
    if (!config.reboot) return;
    const record = loadRecord(stateDir, config);
    if (bootedSlot(config, record) !== record.selected) reboot(config, log, record.selected);
  }

  const asError = (o: Outcome) => new RootfsAbError(o.code ?? 'health_check_failed', o.reason ?? o.result, undefined, o);

  async function installJournaled(ctx: InstallContext, config: SlotConfig, record: BootRecord, j: Active): Promise<{ committed: true }> {
    const { stateDir, log } = ctx;
    const { glaze, size, target } = j;
    const device = config.slots[target];
    writeJsonDurably(recordPath(stateDir), {
      ...record,
      previous: record.previous === target ? null : record.previous,
      slots: { ...record.slots, [target]: null },
    } satisfies BootRecord);
    log.info({ glazeId: glaze.id, slot: target, device, size }, 'rootfs-ab: writing the inactive slot');
    let lastLogged = 0;
    const written = await writeSlot(ctx.payloadPath, device, async (bytes) => {
      if (bytes - lastLogged >= 64 << 20 || bytes === size) {
        lastLogged = bytes;
        log.info({ slot: target, bytes, total: size }, 'rootfs-ab: written %d of %d bytes', bytes, size);
      }
      await progress({ phase: 'writing', slot: target, bytes, total: size });
    });
    if (written.sha256 !== glaze.sha256) {
      throw asError(rollBack(stateDir, config, log, j, 'payload_mismatch', `the payload's SHA-256 is ${written.sha256}, the Glaze says ${glaze.sha256}`));
    }
    await progress({ phase: 'verifying', slot: target });
    const readBack = await digestOfSlot(device, size);
    if (readBack !== glaze.sha256) {
      throw asError(rollBack(stateDir, config, log, j, 'verify_failed', `slot ${target} reads back SHA-256 ${readBack}, expected ${glaze.sha256}`));
    }

    // The switch: the boot record's rename is the commit point, the bootloader follows it.
    const sw: Active = { ...j, phase: 'switching' };
    writeJsonDurably(journalPath(stateDir), sw);
    const switched = loadRecord(stateDir, config);
    writeJsonDurably(recordPath(stateDir), { ...switched, selected: target, trial: { slot: target, glaze, size, triesLeft: config.maxTries } } satisfies BootRecord);
    await progress({ phase: 'switching', slot: target, step: 'record' });
    selectInBootloader(config.bootloader, target);
    await progress({ phase: 'switching', slot: target, step: 'bootloader' });
    const trial: Active = { ...j, phase: 'trial' };
    writeJsonDurably(journalPath(stateDir), trial);

    if (config.reboot) {
      await progress({ phase: 'rebooting', slot: target });
      try {
        reboot(config, log, target);
      } catch (e) {
        throw asError(rollBack(stateDir, config, log, trial, 'reboot_failed', (e as Error).message));
      }
      // The device is going down; the next start's recover() runs the trial boot.
      return new Promise<never>(() => {});
    }
    const outcome = await trialBoot(stateDir, config, log, trial, target);
    if (outcome.result !== 'installed') throw asError(outcome);
    return { committed: true };
  }

  return {
    name: 'rootfs-ab',

    async install(ctx: InstallContext): Promise<{ committed: true }> {
      const { stateDir, log } = ctx;
      const config = loadSlotConfig(stateDir);
      if (existsSync(journalPath(stateDir))) throw new RootfsAbError('install_in_progress', 'an A/B install is in progress: recover() first');
      const record = loadRecord(stateDir, config);
      if (record.trial) throw new RootfsAbError('install_in_progress', `slot ${record.trial.slot} is on trial: recover() first`);
      const glaze: GlazeRef = { id: ctx.glaze.id, name: ctx.glaze.name, version: ctx.glaze.version, sha256: ctx.glaze.sha256.toLowerCase() };
      const from = record.committed;
      const target = otherSlot(from);
      const device = config.slots[target];
      const size = statSync(ctx.payloadPath).size;
      const capacity = slotCapacity(device);
      if (size > capacity) throw new RootfsAbError('slot_too_small', `the image is ${size} bytes, slot ${target} (${device}) holds ${capacity}`);

      if (config.bootloader.kind === 'extlinux') readBootloader(config.bootloader);

      // The target slot stops being a rollback candidate before its first byte is overwritten.
      const j: Active = { phase: 'writing', glaze, size, from, target, startedAt: now() };
      writeJsonDurably(journalPath(stateDir), j);
      try {
        return await installJournaled(ctx, config, record, j);
      } catch (e) {
        if (e instanceof RootfsAbError && e.outcome) throw e;
        // An I/O error (EIO, ENOSPC, a device gone): undo this install now; if even that fails, recover() will.
        const current = readJsonIfExists<Journal>(journalPath(stateDir));
        if (!current) throw e;
        const reason = `slot ${target}: ${(e as Error).message}`;
        const outcome =
          current.phase === 'applying'
            ? apply(stateDir, config, log, current.next, current.outcome)
            : rollBack(stateDir, config, log, current, e instanceof RootfsAbError ? e.abCode : 'io_failed', reason);
        if (outcome.result === 'installed') return { committed: true };
        throw asError(outcome);
      }
    },

    async recover(stateDir: string, log: Logger): Promise<'clean' | 'finished' | 'rolled_back'> {
      if (!existsSync(configPath(stateDir))) return 'clean';
      const config = loadSlotConfig(stateDir);
      const j = readJsonIfExists<Journal>(journalPath(stateDir));
      let outcome: Outcome;
      if (!j) {
        // A kill between a manual rollback's record and its bootloader write: make them agree.
        const record = loadRecord(stateDir, config);
        selectInBootloader(config.bootloader, record.selected);
        rebootIfElsewhere(stateDir, config, log);
        return 'clean';
      }
      log.warn({ phase: j.phase }, 'rootfs-ab: an interrupted install is being finished');
      if (j.phase === 'applying') outcome = apply(stateDir, config, log, j.next, j.outcome);
      else if (j.phase === 'writing') {
        outcome = rollBack(stateDir, config, log, j, 'interrupted', `interrupted while writing slot ${j.target}; slot ${j.from} still boots`);
      } else {
        outcome = await trialBoot(stateDir, config, log, j, bootedSlot(config, loadRecord(stateDir, config)));
      }
      rebootIfElsewhere(stateDir, config, log);
      return outcome.result === 'installed' ? 'finished' : 'rolled_back';
    },

    async rollback(stateDir: string, log: Logger): Promise<Outcome> {
      const config = loadSlotConfig(stateDir);
      if (existsSync(journalPath(stateDir))) throw new RootfsAbError('install_in_progress', 'an A/B install is in progress: recover() first');
      const record = loadRecord(stateDir, config);
      const prev = record.previous;
      const content = prev ? record.slots[prev] : null;
      if (!prev || !content) throw new RootfsAbError('no_previous_slot', 'no previously committed slot to roll back to');
      const digest = await digestOfSlot(config.slots[prev], content.size);
      if (digest !== content.glaze.sha256) {
        writeJsonDurably(recordPath(stateDir), { ...record, previous: null, slots: { ...record.slots, [prev]: null } } satisfies BootRecord);
        throw new RootfsAbError('previous_slot_invalid', `slot ${prev} no longer holds ${content.glaze.name}@${content.glaze.version} (SHA-256 ${digest})`);
      }
      const current = record.slots[record.committed];
      const next: BootRecord = { selected: prev, committed: prev, previous: record.committed, trial: null, slots: record.slots };
      const outcome = apply(stateDir, config, log, next, {
        glaze: current?.glaze ?? null,
        result: 'rolled_back',
        reason: `manual rollback from slot ${record.committed}${current ? ` (${current.glaze.name}@${current.glaze.version})` : ''} to slot ${prev} (${content.glaze.name}@${content.glaze.version})`,
        slot: prev,
        at: now(),
      });
      rebootIfElsewhere(stateDir, config, log);
      return outcome;
    },
  };
}

/** The handler the agent registers for `rootfs-ab` Glazes. */
export const rootfsAb: RootfsAbHandler = createRootfsAbHandler();
