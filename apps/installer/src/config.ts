/**
 * TIPS-C's first-boot files (contract B), written into the installed system's `tips-root`
 * partition: each temp + fsync + rename, the directory fsynced, then sync and umount.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import { attachPartition1, readPartition1 } from './disk.ts';
import { InstallerError } from './errors.ts';
import type { Work } from './work.ts';

const run = promisify(execFile);
export const ROOT_LABEL = 'tips-root';
export const CLIENT_DIR = 'etc/tips-client';

export interface ClientFiles {
  'config.json': { content: string; mode: number };
  'enrollment.json': { content: string; mode: number };
  'ca.pem': { content: string; mode: number };
}

/** The three files, exactly as contract B names them (null when the work carries no enrollment). */
export function clientFiles(work: Work): ClientFiles | null {
  const e = work.enrollment;
  if (!e) return null;
  const config = {
    masterUrl: e.masterUrl,
    estUrl: e.estUrl,
    caFile: '/etc/tips-client/ca.pem',
    tipsId: work.metal.tipsId,
    metalId: work.metal.id,
    enrollmentFile: '/etc/tips-client/enrollment.json',
    stateDir: '/var/lib/tips-client',
    vendorId: work.vendorId,
    classId: work.classId,
  };
  return {
    'config.json': { content: `${JSON.stringify(config, null, 2)}\n`, mode: 0o644 },
    'enrollment.json': { content: `${JSON.stringify({ secretId: e.secretId, secret: e.secret })}\n`, mode: 0o600 },
    'ca.pem': { content: e.caPem.endsWith('\n') ? e.caPem : `${e.caPem}\n`, mode: 0o644 },
  };
}

async function writeDurably(dir: string, name: string, content: string, mode: number): Promise<void> {
  const tmp = join(dir, `.${name}.tmp`);
  const fh = await open(tmp, 'w', mode);
  try {
    await fh.writeFile(content);
    await fh.chmod(mode);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, join(dir, name));
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Mounts partition 1 when it is an ext filesystem labelled tips-root and writes the files.
 * Returns false (nothing written) for an image that is not a TIPS root (a user's own OS image).
 */
export async function configureInstalledSystem(o: { disk: string; work: Work; stateDir: string; log: Logger }): Promise<boolean> {
  const files = clientFiles(o.work);
  const p = await readPartition1(o.disk);
  if (!p || p.label !== ROOT_LABEL) {
    o.log.warn({ phase: 'configure', label: p?.label ?? null }, `partition 1 is not an ext filesystem labelled ${ROOT_LABEL}: TIPS-C configuration not written`);
    return false;
  }
  if (!files) {
    o.log.warn({ phase: 'configure' }, 'the work carries no enrollment: TIPS-C configuration not written');
    return false;
  }
  let attached: Awaited<ReturnType<typeof attachPartition1>> | undefined;
  let mnt: string | undefined;
  let mounted = false;
  try {
    attached = await attachPartition1(o.disk, p);
    mkdirSync(o.stateDir, { recursive: true });
    mnt = mkdtempSync(join(o.stateDir, 'root-'));
    await run('mount', ['-t', 'ext4', attached.device, mnt]);
    mounted = true;
    const dir = join(mnt, CLIENT_DIR);
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    for (const [name, f] of Object.entries(files) as [keyof ClientFiles, ClientFiles[keyof ClientFiles]][]) await writeDurably(dir, name, f.content, f.mode);
    await syncDir(dir);
    await run('sync', []);
    await run('umount', [mnt]);
    mounted = false;
    o.log.info({ phase: 'configure', device: attached.device, files: Object.keys(files) }, 'TIPS-C configuration written');
    return true;
  } catch (e) {
    throw new InstallerError('write_failed', `writing the TIPS-C configuration into partition 1 failed: ${(e as Error).message}`);
  } finally {
    if (mounted && mnt) await run('umount', [mnt]).catch(() => undefined);
    if (mnt) rmSync(mnt, { recursive: true, force: true });
    await attached?.detach().catch(() => undefined);
  }
}
