/**
 * S14 retirement on the metal: when the master answers 403 `metal_retired` (the owner ran `tips metal
 * retire`), the client destroys what could let anyone act as this metal — every key generation
 * (each key overwritten with zeros and fsynced before it is unlinked), the certificates, the
 * enrollment secret file if one is left — fsyncs the directories, and records the retirement so
 * Phases 2 and 3 never run again and `tips-client status` says "retired". Tokens live only in
 * memory and were bound to the retired key. Each step is idempotent, so a kill during the wipe is
 * finished by the next start (the record is written first).
 */
import { closeSync, existsSync, fsyncSync, lstatSync, openSync, readdirSync, rmSync, statSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { readJsonIfExists, syncDir, writeJsonDurably } from '../state/files.ts';
import { identityDir } from './store.ts';

export interface Retirement {
  at: string;
  /** The master's code that said so. */
  code: string;
  /** The serial of the certificate in force when it was retired. */
  serial: string | null;
  /** Files destroyed (paths), for the log. */
  wiped: string[];
}

export const retiredFile = (stateDir: string) => join(stateDir, 'agent', 'retired.json');

export function readRetirement(stateDir: string): Retirement | undefined {
  return readJsonIfExists<Retirement>(retiredFile(stateDir));
}

/** Overwrites a regular file with zeros, fsyncs it, unlinks it. */
function shred(path: string): boolean {
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(path);
  } catch {
    return false;
  }
  if (st.isFile() && st.size > 0) {
    const fd = openSync(path, 'r+');
    try {
      const zeros = Buffer.alloc(Math.min(st.size, 1 << 16));
      for (let off = 0; off < st.size; off += zeros.length) writeSync(fd, zeros, 0, Math.min(zeros.length, st.size - off), off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
  rmSync(path, { force: true });
  return true;
}

/** Records the retirement, then wipes every credential. Safe to call again (finishes a cut wipe). */
export function wipeCredentials(stateDir: string, enrollmentFile: string, cause: { code: string; serial: string | null; at: string }): Retirement {
  const record: Retirement = readRetirement(stateDir) ?? { ...cause, wiped: [] };
  writeJsonDurably(retiredFile(stateDir), record);
  const wiped: string[] = [];
  const root = identityDir(stateDir);
  if (existsSync(root)) {
    // `current` first: from here on no generation is in force.
    if (shred(join(root, 'current'))) wiped.push(join(root, 'current'));
    syncDir(root);
    for (const e of readdirSync(root)) {
      const dir = join(root, e);
      if (statSync(dir, { throwIfNoEntry: false })?.isDirectory()) {
        for (const f of readdirSync(dir)) if (shred(join(dir, f))) wiped.push(join(dir, f));
        syncDir(dir);
        rmSync(dir, { recursive: true, force: true });
      } else if (shred(dir)) wiped.push(dir);
    }
    syncDir(root);
  }
  if (shred(enrollmentFile)) {
    wiped.push(enrollmentFile);
    syncDir(dirname(enrollmentFile));
  }
  const done = { ...record, wiped: [...record.wiped, ...wiped] };
  writeJsonDurably(retiredFile(stateDir), done);
  return done;
}
