/**
 * What TIPS installed, as a comparable snapshot: the SHA-256, mode and size of every file under the
 * managed paths (symlinks by their target) and the dpkg database (the status file's SHA-256 and the
 * installed packages with their versions).
 */
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync, type Stats } from 'node:fs';
import { join, resolve } from 'node:path';

export type FileEntry = { type: 'file'; sha256: string; mode: number; size: number } | { type: 'symlink'; target: string };

export interface DpkgState {
  /** The status file this snapshot read (under the dpkg root). */
  statusPath: string;
  /** null when there is no dpkg database (not a Debian-family system). */
  statusSha256: string | null;
  /** `name:arch` → version, only packages dpkg considers present (not `not-installed`/`config-files`). */
  packages: Record<string, string>;
}

export interface Snapshot {
  files: Record<string, FileEntry>;
  dpkg: DpkgState;
}

export const dpkgStatusPath = (dpkgRoot: string) => join(resolve(dpkgRoot), 'var/lib/dpkg/status');
export const dpkgAdminDir = (dpkgRoot: string) => join(resolve(dpkgRoot), 'var/lib/dpkg');

/** Installed packages from a dpkg status file (RFC 822-style paragraphs). */
export function parseDpkgStatus(text: string): Record<string, string> {
  const packages: Record<string, string> = {};
  for (const para of text.split(/\n\s*\n/)) {
    const field = (name: string) => new RegExp(`^${name}:[ \\t]*(.*)$`, 'mi').exec(para)?.[1]?.trim();
    const name = field('Package');
    const status = field('Status');
    if (!name || !status) continue;
    const state = status.split(/\s+/)[2];
    if (state === 'not-installed' || state === 'config-files') continue;
    packages[`${name}:${field('Architecture') ?? 'all'}`] = field('Version') ?? '';
  }
  return packages;
}

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

/** A hash cache keyed by what the kernel says about a file, so an unchanged file is not read again. */
export class HashCache {
  private readonly entries = new Map<string, { key: string; sha256: string }>();
  hash(path: string, st: Stats): string {
    // ctime cannot be set from user space: a rewrite that restores mtime still changes it.
    const key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
    const hit = this.entries.get(path);
    if (hit && hit.key === key) return hit.sha256;
    const digest = sha256(readFileSync(path));
    this.entries.set(path, { key, sha256: digest });
    return digest;
  }
  clear(): void {
    this.entries.clear();
  }
}

function walk(path: string, out: Record<string, FileEntry>, cache: HashCache): void {
  let st: Stats;
  try {
    st = lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (st.isSymbolicLink()) out[path] = { type: 'symlink', target: readlinkSync(path) };
  else if (st.isDirectory()) {
    for (const name of readdirSync(path).sort()) walk(join(path, name), out, cache);
  } else if (st.isFile()) {
    try {
      out[path] = { type: 'file', sha256: cache.hash(path, st), mode: st.mode & 0o7777, size: st.size };
    } catch (e) {
      // Removed between lstat and read: absent.
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
}

export function takeSnapshot(opts: { managedPaths: string[]; dpkgRoot: string; cache?: HashCache }): Snapshot {
  const cache = opts.cache ?? new HashCache();
  const files: Record<string, FileEntry> = {};
  for (const p of opts.managedPaths) walk(resolve(p), files, cache);
  const statusPath = dpkgStatusPath(opts.dpkgRoot);
  let status: Buffer | null = null;
  try {
    status = readFileSync(statusPath);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  return {
    files,
    dpkg: { statusPath, statusSha256: status ? sha256(status) : null, packages: status ? parseDpkgStatus(status.toString('utf8')) : {} },
  };
}

/** Directories to watch for a snapshot: every directory under the managed paths, the parents of managed files, the dpkg admin dir. */
export function watchedDirectories(managedPaths: string[], dpkgRoot: string): string[] {
  const dirs = new Set<string>();
  const visit = (p: string) => {
    let st: Stats;
    try {
      st = lstatSync(p);
    } catch {
      return;
    }
    if (!st.isDirectory()) return;
    dirs.add(p);
    for (const name of readdirSync(p)) visit(join(p, name));
  };
  for (const raw of managedPaths) {
    const p = resolve(raw);
    visit(p);
    // A managed file, or a managed path that does not exist yet: watch where it would appear.
    if (!dirs.has(p)) dirs.add(resolve(p, '..'));
  }
  dirs.add(dpkgAdminDir(dpkgRoot));
  return [...dirs].sort();
}
