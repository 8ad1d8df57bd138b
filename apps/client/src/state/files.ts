/**
 * Every file the client keeps is written temp + fsync + rename + fsync of the directory, so a
 * power cut leaves the old version or the new one, never half of either.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** fsync of a directory: makes a rename or an unlink in it durable. */
export function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes `path` durably with `mode` (the temp file is created with it, so a key is never readable by others). */
export function writeFileDurably(path: string, data: string | Uint8Array, mode = 0o644): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  syncDir(dir);
}

export function writeJsonDurably(path: string, value: unknown, mode = 0o644): void {
  writeFileDurably(path, `${JSON.stringify(value, null, 2)}\n`, mode);
}

/** Removes a file durably (no error when it is already gone). */
export function removeDurably(path: string): void {
  rmSync(path, { force: true });
  syncDir(dirname(path));
}

/** The parsed JSON of `path`, or undefined when it does not exist. Other errors propagate. */
export function readJsonIfExists<T>(path: string): T | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  return JSON.parse(text) as T;
}
