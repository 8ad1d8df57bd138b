/**
 * The bootloader side of the A/B switch and the question "which slot are we running from?".
 *
 * extlinux: the `DEFAULT <label>` line of extlinux.conf picks the slot; each slot's LABEL entry
 * carries `tips.slot=a|b` on its APPEND line, so the booted kernel's command line names its slot.
 * The file is replaced temp + fsync + rename (on the FAT/ext boot partition the rename is the
 * switch). extlinux has no boot counter: the agent counts boots of a trial slot in the boot record
 * and rolls back after `maxTries`.
 */
import { readFileSync } from 'node:fs';
import { type BootRecord, type BootloaderConfig, RootfsAbError, type Slot, SLOTS, type SlotConfig, writeFileDurably } from './rootfs-ab-store.ts';

const DEFAULT_LINE = /^[ \t]*DEFAULT[ \t]+(\S+)[ \t]*$/im;

/** The slot the bootloader boots now; undefined when it boots neither slot's label. */
export function bootloaderSlot(bl: BootloaderConfig): Slot | undefined {
  if (bl.kind === 'none') return undefined;
  const text = readFileSync(bl.file, 'utf8');
  const label = DEFAULT_LINE.exec(text)?.[1];
  return SLOTS.find((s) => bl.labels[s] === label);
}

/** The bootloader file's text, refused unless it has an entry for each slot's label. */
export function readBootloader(bl: Extract<BootloaderConfig, { kind: 'extlinux' }>): string {
  let text: string;
  try {
    text = readFileSync(bl.file, 'utf8');
  } catch (e) {
    throw new RootfsAbError('config_invalid', `cannot read ${bl.file}: ${(e as Error).message}`, 'bootloader.file');
  }
  for (const s of SLOTS) {
    if (!new RegExp(`^[ \\t]*LABEL[ \\t]+${bl.labels[s].replace(/\./g, '\\.')}[ \\t]*$`, 'im').test(text)) {
      throw new RootfsAbError('config_invalid', `${bl.file} has no "LABEL ${bl.labels[s]}" entry for slot ${s}`, `bootloader.labels.${s}`);
    }
  }
  return text;
}

/** Points the bootloader at `slot` (no-op when it already does). */
export function selectInBootloader(bl: BootloaderConfig, slot: Slot): void {
  if (bl.kind === 'none') return;
  const text = readBootloader(bl);
  const line = `DEFAULT ${bl.labels[slot]}`;
  if (DEFAULT_LINE.exec(text)?.[0].trim() === line) return;
  const next = DEFAULT_LINE.test(text) ? text.replace(DEFAULT_LINE, line) : `${line}\n${text}`;
  writeFileDurably(bl.file, next);
}

/** `tips.slot=a|b` from a kernel command line. */
export function slotFromCmdline(cmdline: string): Slot | undefined {
  const m = /(?:^|\s)tips\.slot=([ab])(?:\s|$)/.exec(cmdline);
  return m ? (m[1] as Slot) : undefined;
}

/** The slot this process runs from, as the configuration says to learn it. */
export function bootedSlot(config: SlotConfig, record: BootRecord): Slot {
  if (config.bootedSlot === 'record') return record.selected;
  if (config.bootedSlot === 'bootloader') return bootloaderSlot(config.bootloader) ?? record.committed;
  const fromCmdline = slotFromCmdline(readFileSync(config.cmdlineFile, 'utf8'));
  if (!fromCmdline) {
    throw new RootfsAbError('config_invalid', `${config.cmdlineFile} has no tips.slot=a|b (add it to each slot's kernel command line)`, 'cmdlineFile');
  }
  return fromCmdline;
}
