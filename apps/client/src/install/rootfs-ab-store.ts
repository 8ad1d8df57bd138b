/**
 * The rootfs-ab handler's files in the state dir (`<stateDir>/rootfs-ab/`):
 * - `slots.json`  the slot configuration the image builder / installer writes (read only here);
 * - `boot.json`   the boot-selection record: which slot boots, which is committed, the trial and
 *                 its tries left, what each slot holds — replaced atomically, it is the switch;
 * - `journal.json` the install in progress (write-ahead intent), removed when it ends;
 * - `outcome.json` the last result (installed / failed / rolled_back with the reason) the agent reports.
 * Every write: temp + fsync + rename + fsync of the directory (state/files.ts, the client's one
 * implementation), so a power cut leaves the old file or the new one, never half of either.
 */
import { join } from 'node:path';
import { readJsonIfExists, removeDurably, syncDir, writeFileDurably, writeJsonDurably } from '../state/files.ts';
import { InstallError, type InstallErrorCode } from './types.ts';

export type Slot = 'a' | 'b';
export const SLOTS: readonly Slot[] = ['a', 'b'];
export const otherSlot = (s: Slot): Slot => (s === 'a' ? 'b' : 'a');

export type RootfsAbErrorCode =
  | 'config_invalid'
  | 'install_in_progress'
  | 'slot_too_small'
  | 'payload_mismatch'
  | 'verify_failed'
  | 'health_check_failed'
  | 'tries_exhausted'
  | 'wrong_slot_booted'
  | 'interrupted'
  | 'no_previous_slot'
  | 'previous_slot_invalid'
  | 'reboot_failed'
  | 'io_failed';

/** What the agent's InstallError code (its report) says for each of the handler's own codes. */
const INSTALL_CODE: Record<RootfsAbErrorCode, InstallErrorCode> = {
  config_invalid: 'install_input_invalid',
  install_in_progress: 'install_input_invalid',
  no_previous_slot: 'install_input_invalid',
  previous_slot_invalid: 'install_input_invalid',
  slot_too_small: 'write_failed',
  payload_mismatch: 'write_failed',
  verify_failed: 'write_failed',
  io_failed: 'write_failed',
  interrupted: 'write_failed',
  reboot_failed: 'write_failed',
  // The trial slot did not prove itself: the agent reports these as rolled back.
  health_check_failed: 'health_check_failed',
  tries_exhausted: 'health_check_failed',
  wrong_slot_booted: 'health_check_failed',
};

/**
 * The handler's error: an InstallError (contract D) whose `code` the agent understands, with the
 * handler's precise `abCode`; code-matched, never message-matched.
 */
export class RootfsAbError extends InstallError {
  constructor(
    readonly abCode: RootfsAbErrorCode,
    message: string,
    readonly field?: string,
    /** Set when the install already ended (rolled back or failed) with this outcome. */
    readonly outcome?: Outcome,
  ) {
    super(INSTALL_CODE[abCode], message);
  }
}

export interface GlazeRef {
  id: string;
  name: string;
  version: string;
  sha256: string;
}

export type BootloaderConfig =
  /** Only the boot record switches (a bootloader script reads it, or tests). */
  | { kind: 'none' }
  /** extlinux/syslinux: the `DEFAULT <label>` line of `file` selects the slot. */
  | { kind: 'extlinux'; file: string; labels: Record<Slot, string> };

export type HealthCheck = { command: string[] } | { url: string };

export interface SlotConfig {
  /** Block devices (`/dev/mmcblk0p2`), loop devices or plain files (tests). */
  slots: Record<Slot, string>;
  bootloader: BootloaderConfig;
  /**
   * How the agent learns which slot it runs from: `cmdline` (the kernel command line carries
   * `tips.slot=a|b`, on devices), `bootloader` (what the bootloader would boot now) or `record`
   * (what the boot record selects; no reboot between switch and health check).
   */
  bootedSlot: 'cmdline' | 'bootloader' | 'record';
  cmdlineFile: string;
  healthCheck: HealthCheck;
  healthTimeoutMs: number;
  healthAttempts: number;
  healthIntervalMs: number;
  /** Boots of the trial slot before it is given up when none of them passed the health check. */
  maxTries: number;
  /** The command that reboots the device after a switch; null: continue in this process (tests, live rootfs). */
  reboot: string[] | null;
  /** The slot Phase 1 wrote, used while no boot record exists. */
  initialSlot: Slot;
}

export interface SlotContent {
  glaze: GlazeRef;
  size: number;
}

export interface BootRecord {
  /** The slot the bootloader boots next. */
  selected: Slot;
  /** The last slot that passed its health check (or Phase 1's). */
  committed: Slot;
  /** The slot committed before `committed`, the manual rollback's target; null when none. */
  previous: Slot | null;
  trial: { slot: Slot; glaze: GlazeRef; size: number; triesLeft: number } | null;
  /** What each slot holds; null: unknown or invalid (half written, failed its health check). */
  slots: Record<Slot, SlotContent | null>;
}

export type Outcome = {
  glaze: GlazeRef | null;
  result: 'installed' | 'failed' | 'rolled_back';
  reason: string | null;
  slot: Slot;
  at: string;
  /** Why it did not install, as a code (absent when installed or rolled back by hand). */
  code?: RootfsAbErrorCode;
};

export type Journal =
  | { phase: 'writing' | 'switching' | 'trial'; glaze: GlazeRef; size: number; from: Slot; target: Slot; startedAt: string }
  /** The end of an install or a manual rollback: apply `next`, point the bootloader at it, record `outcome`. */
  | { phase: 'applying'; next: BootRecord; outcome: Outcome };

export const abDir = (stateDir: string) => join(stateDir, 'rootfs-ab');
export const configPath = (stateDir: string) => join(abDir(stateDir), 'slots.json');
export const recordPath = (stateDir: string) => join(abDir(stateDir), 'boot.json');
export const journalPath = (stateDir: string) => join(abDir(stateDir), 'journal.json');
export const outcomePath = (stateDir: string) => join(abDir(stateDir), 'outcome.json');

// Durable writes are the client's one implementation (state/files.ts), re-exported for the A/B code.
export { readJsonIfExists, removeDurably, syncDir, writeFileDurably, writeJsonDurably };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const bad = (field: string, what: string) => new RootfsAbError('config_invalid', `rootfs-ab/slots.json: ${field} ${what}`, field);
const isSlot = (v: unknown): v is Slot => v === 'a' || v === 'b';

function positiveInt(raw: Record<string, unknown>, field: string, fallback: number, min = 1): number {
  const v = raw[field];
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw bad(field, `must be an integer ≥ ${min}`);
  return v;
}

function commandLine(v: unknown, field: string): string[] {
  if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'string' && x.length > 0)) {
    throw bad(field, 'must be a non-empty array of non-empty strings (argv, no shell)');
  }
  return v as string[];
}

/** Parses and validates `slots.json`; every refusal names the field. */
export function parseSlotConfig(raw: unknown): SlotConfig {
  if (!isObject(raw)) throw bad('(root)', 'must be a JSON object');
  const slots = raw.slots;
  if (!isObject(slots)) throw bad('slots', 'must be an object { "a": "<device>", "b": "<device>" }');
  for (const s of SLOTS) {
    if (typeof slots[s] !== 'string' || !(slots[s] as string).startsWith('/')) throw bad(`slots.${s}`, 'must be an absolute path');
  }
  if (slots.a === slots.b) throw bad('slots.b', 'must differ from slots.a');
  const bl = raw.bootloader ?? { kind: 'none' };
  let bootloader: BootloaderConfig;
  if (!isObject(bl)) throw bad('bootloader', 'must be an object');
  if (bl.kind === 'none') bootloader = { kind: 'none' };
  else if (bl.kind === 'extlinux') {
    if (typeof bl.file !== 'string' || !bl.file.startsWith('/')) throw bad('bootloader.file', 'must be an absolute path');
    const labels = bl.labels ?? { a: 'tips-a', b: 'tips-b' };
    if (!isObject(labels)) throw bad('bootloader.labels', 'must be an object { "a": "<label>", "b": "<label>" }');
    for (const s of SLOTS) {
      if (typeof labels[s] !== 'string' || !/^[A-Za-z0-9._-]+$/.test(labels[s] as string)) {
        throw bad(`bootloader.labels.${s}`, 'must be a label of letters, digits, ".", "_" or "-"');
      }
    }
    if (labels.a === labels.b) throw bad('bootloader.labels.b', 'must differ from bootloader.labels.a');
    bootloader = { kind: 'extlinux', file: bl.file, labels: { a: labels.a as string, b: labels.b as string } };
  } else throw bad('bootloader.kind', 'must be "none" or "extlinux"');
  const booted = raw.bootedSlot ?? (bootloader.kind === 'none' ? 'record' : 'cmdline');
  if (booted !== 'cmdline' && booted !== 'bootloader' && booted !== 'record') throw bad('bootedSlot', 'must be "cmdline", "bootloader" or "record"');
  if (booted === 'bootloader' && bootloader.kind === 'none') throw bad('bootedSlot', 'cannot be "bootloader" without a bootloader');
  const cmdlineFile = raw.cmdlineFile ?? '/proc/cmdline';
  if (typeof cmdlineFile !== 'string' || !cmdlineFile.startsWith('/')) throw bad('cmdlineFile', 'must be an absolute path');
  const hc = raw.healthCheck;
  let healthCheck: HealthCheck;
  if (isObject(hc) && hc.command !== undefined && hc.url === undefined) healthCheck = { command: commandLine(hc.command, 'healthCheck.command') };
  else if (isObject(hc) && typeof hc.url === 'string' && hc.command === undefined) {
    let u: URL;
    try {
      u = new URL(hc.url);
    } catch {
      throw bad('healthCheck.url', 'must be a URL');
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw bad('healthCheck.url', 'must be an http: or https: URL');
    healthCheck = { url: hc.url };
  } else throw bad('healthCheck', 'must be { "command": [argv…] } or { "url": "http://…" }');
  const reboot = raw.reboot === undefined || raw.reboot === null ? null : commandLine(raw.reboot, 'reboot');
  const initialSlot = raw.initialSlot ?? 'a';
  if (!isSlot(initialSlot)) throw bad('initialSlot', 'must be "a" or "b"');
  return {
    slots: { a: slots.a as string, b: slots.b as string },
    bootloader,
    bootedSlot: booted,
    cmdlineFile,
    healthCheck,
    healthTimeoutMs: positiveInt(raw, 'healthTimeoutMs', 30_000),
    healthAttempts: positiveInt(raw, 'healthAttempts', 3),
    healthIntervalMs: positiveInt(raw, 'healthIntervalMs', 2_000, 0),
    maxTries: positiveInt(raw, 'maxTries', 3),
    reboot,
    initialSlot,
  };
}

export function loadSlotConfig(stateDir: string): SlotConfig {
  let raw: unknown;
  try {
    raw = readJsonIfExists(configPath(stateDir));
  } catch (e) {
    throw new RootfsAbError('config_invalid', `rootfs-ab/slots.json is not JSON: ${(e as Error).message}`, '(root)');
  }
  if (raw === undefined) throw new RootfsAbError('config_invalid', `rootfs-ab/slots.json is missing in ${stateDir}`, '(root)');
  return parseSlotConfig(raw);
}

export function loadRecord(stateDir: string, config: SlotConfig): BootRecord {
  return (
    readJsonIfExists<BootRecord>(recordPath(stateDir)) ?? {
      selected: config.initialSlot,
      committed: config.initialSlot,
      previous: null,
      trial: null,
      slots: { a: null, b: null },
    }
  );
}
