/**
 * `archive`: a tar archive (plain, gzip, xz or zstd — GNU tar recognises it) unpacked into a
 * managed directory `<state>/apps/<glaze name>/<version>`; `<state>/apps/<glaze name>/current`
 * is a symlink switched by rename, the commit point. Before it the previous version is what runs;
 * after it the new one. The version before is kept (manual rollback), older ones are removed.
 *
 * Journal `<state>/install/archive.json` = { name, version } while an install is under way.
 * recover(): journal and `current` already names the version → finished; otherwise the unpacked
 * or half-unpacked directory is removed → rolled back.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { readJsonIfExists, removeDurably, syncDir, writeJsonDurably } from '../state/files.ts';
import { fsyncTree } from './fsync-tree.ts';
import { readSymlink, switchSymlink } from './switch.ts';
import { type InstallContext, InstallError, type InstallHandler, safeSegment } from './types.ts';

const journalOf = (stateDir: string) => join(stateDir, 'install', 'archive.json');
export const appsDir = (stateDir: string) => join(stateDir, 'apps');
const STAGING = '.staging-';

function untar(archive: string, into: string): Promise<void> {
  return new Promise((resolve, reject) => {
    // --no-same-owner: files belong to the agent, not to whoever made the archive. GNU tar refuses
    // members with ".." and strips a leading "/" by default, so nothing lands outside `into`.
    const p = spawn('tar', ['-xf', archive, '-C', into, '--no-same-owner', '--no-overwrite-dir'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => {
      err += d;
    });
    p.on('error', (e) => reject(new InstallError('unpack_failed', `tar: ${e.message}`)));
    p.on('close', (code) => (code === 0 ? resolve() : reject(new InstallError('unpack_failed', `tar exited ${code}: ${err.trim().slice(0, 300)}`))));
  });
}

/** Removes versions other than `keep` (current and previous) and any staging directory. */
function prune(appDir: string, keep: (string | undefined)[]): void {
  for (const e of readdirSync(appDir)) {
    if (e === 'current' || keep.includes(e)) continue;
    rmSync(join(appDir, e), { recursive: true, force: true });
  }
  syncDir(appDir);
}

/**
 * Manual rollback (`tips metal rollback`): `current` is switched back to the version kept beside it
 * — one rename, so a kill leaves one version or the other. Resolves with the version now current.
 */
export function rollbackArchive(stateDir: string, glazeName: string, log: Logger): string {
  const appDir = join(appsDir(stateDir), safeSegment(glazeName, 'glaze name'));
  if (existsSync(journalOf(stateDir))) throw new InstallError('install_input_invalid', 'an archive install is in progress: recover() first');
  const link = join(appDir, 'current');
  const now = readSymlink(link);
  const kept = existsSync(appDir) ? readdirSync(appDir).filter((e) => e !== 'current' && e !== now && !e.startsWith(STAGING) && !e.startsWith('.')) : [];
  if (!now || kept.length !== 1) throw new InstallError('install_input_invalid', `${glazeName}: no previous version kept to roll back to`);
  switchSymlink(link, kept[0]!);
  log.info({ event: 'rollback_committed', handler: 'archive', name: glazeName, from: now, to: kept[0] }, `rolled ${glazeName} back from ${now} to ${kept[0]}`);
  return kept[0]!;
}

export const archiveHandler: InstallHandler = {
  name: 'archive',

  async install(ctx: InstallContext) {
    const name = safeSegment(ctx.glaze.name, 'glaze name');
    const version = safeSegment(ctx.glaze.version, 'glaze version');
    const appDir = join(appsDir(ctx.stateDir), name);
    mkdirSync(appDir, { recursive: true });
    const link = join(appDir, 'current');
    const previous = readSymlink(link);
    if (previous === version && existsSync(join(appDir, version))) {
      ctx.log.info({ event: 'install_already_current', handler: 'archive', glaze: ctx.glaze.id, version }, 'already the current version');
      return { committed: true };
    }
    const journal = journalOf(ctx.stateDir);
    writeJsonDurably(journal, { name, version, previous: previous ?? null, glazeId: ctx.glaze.id });
    const staging = join(appDir, `${STAGING}${version}`);
    try {
      rmSync(staging, { recursive: true, force: true });
      rmSync(join(appDir, version), { recursive: true, force: true });
      mkdirSync(staging);
      await untar(ctx.payloadPath, staging);
      fsyncTree(staging);
      renameSync(staging, join(appDir, version));
      syncDir(appDir);
    } catch (e) {
      rmSync(staging, { recursive: true, force: true });
      rmSync(join(appDir, version), { recursive: true, force: true });
      removeDurably(journal);
      throw e instanceof InstallError ? e : new InstallError('write_failed', `unpacking ${name} ${version}: ${(e as Error).message}`);
    }
    switchSymlink(link, version);
    prune(appDir, [version, previous]);
    removeDurably(journal);
    ctx.log.info({ event: 'install_committed', handler: 'archive', glaze: ctx.glaze.id, name, version, previous: previous ?? null, path: join(appDir, version) }, 'archive installed');
    return { committed: true };
  },

  async recover(stateDir: string, log: Logger) {
    const journal = journalOf(stateDir);
    const j = readJsonIfExists<{ name: string; version: string; previous: string | null }>(journal);
    if (!j) {
      // A staging directory without a journal cannot exist (the journal is written first), but a
      // directory left by an older run is harmless to remove.
      if (existsSync(appsDir(stateDir))) {
        for (const app of readdirSync(appsDir(stateDir))) {
          for (const e of readdirSync(join(appsDir(stateDir), app))) if (e.startsWith(STAGING)) rmSync(join(appsDir(stateDir), app, e), { recursive: true, force: true });
        }
      }
      return 'clean';
    }
    const appDir = join(appsDir(stateDir), safeSegment(j.name, 'journal name'));
    const version = safeSegment(j.version, 'journal version');
    if (readSymlink(join(appDir, 'current')) === version) {
      prune(appDir, [version, j.previous ?? undefined]);
      removeDurably(journal);
      log.info({ event: 'install_recovered', handler: 'archive', name: j.name, version, outcome: 'finished' }, 'finished an interrupted archive install');
      return 'finished';
    }
    rmSync(join(appDir, `${STAGING}${version}`), { recursive: true, force: true });
    if (existsSync(join(appDir, version))) rmSync(join(appDir, version), { recursive: true, force: true });
    if (existsSync(appDir)) syncDir(appDir);
    removeDurably(journal);
    log.warn({ event: 'install_recovered', handler: 'archive', name: j.name, version, outcome: 'rolled_back', running: j.previous }, 'rolled back an interrupted archive install');
    return 'rolled_back';
  },
};
