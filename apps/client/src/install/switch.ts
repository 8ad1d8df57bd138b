import { readlinkSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { syncDir } from '../state/files.ts';

/** Points `link` at `target` (relative) atomically: a new symlink beside it, renamed over it. */
export function switchSymlink(link: string, target: string): void {
  const tmp = join(dirname(link), `.${process.pid}.switch.tmp`);
  rmSync(tmp, { force: true });
  symlinkSync(target, tmp);
  renameSync(tmp, link);
  syncDir(dirname(link));
}

export function readSymlink(link: string): string | undefined {
  try {
    return readlinkSync(link);
  } catch {
    return undefined;
  }
}
