import { closeSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs';

/** Durable write: a temp file next to `path`, fsync, rename — a kill leaves the old file or the new one. */
export function writeFileDurably(path: string, data: string | Uint8Array, mode: number): void {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}
