// Helpers of the Phase 1 e2e suites: open partition 1 of a raw disk image (as the installer does on
// the metal's disk) to read or write the installed system's files.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, runOk } from '@tips/testbed';

async function appear(path: string, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!existsSync(path)) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

/** Mounts partition 1 of `image` (a loop device with its partitions), runs `fn` on it, syncs and unmounts. */
export async function withImagePartition<T>(image: string, fn: (root: string) => T | Promise<T>): Promise<T> {
  const loop = (await runOk('losetup', ['--find', '--show', '--partscan', image])).stdout.trim();
  const mnt = mkdtempSync(join(tmpdir(), 'tips-p1-mnt-'));
  let mounted = false;
  try {
    if (!(await appear(`${loop}p1`, 2000))) {
      await runOk('partx', ['--add', '--nr', '1', loop]);
      if (!(await appear(`${loop}p1`, 5000))) throw new Error(`no ${loop}p1 for ${image}`);
    }
    await runOk('mount', ['-t', 'ext4', `${loop}p1`, mnt]);
    mounted = true;
    const out = await fn(mnt);
    await runOk('sync', ['-f', mnt]);
    return out;
  } finally {
    if (mounted) await run('umount', [mnt]);
    await run('blockdev', ['--flushbufs', `${loop}p1`]);
    await run('blockdev', ['--flushbufs', loop]);
    await run('partx', ['--delete', loop]);
    await run('losetup', ['--detach', loop]);
    rmSync(mnt, { recursive: true, force: true });
  }
}
