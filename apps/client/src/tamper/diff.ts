/** The change list of contract C `POST /tamper`: what differs between the baseline and now. */
import type { FileEntry, Snapshot } from './snapshot.ts';

export interface TamperChange {
  path: string;
  kind: 'modified' | 'added' | 'removed' | 'package';
  detail: string;
}

function describeFile(e: FileEntry): string {
  return e.type === 'symlink' ? `symlink → ${e.target}` : `sha256 ${e.sha256.slice(0, 16)}…, mode ${e.mode.toString(8).padStart(4, '0')}, ${e.size} bytes`;
}

function fileChange(before: FileEntry, after: FileEntry): string | null {
  if (before.type !== after.type) return `was a ${before.type}, now a ${after.type}`;
  if (before.type === 'symlink' && after.type === 'symlink') return before.target === after.target ? null : `symlink target ${before.target} → ${after.target}`;
  if (before.type === 'file' && after.type === 'file') {
    const parts: string[] = [];
    if (before.sha256 !== after.sha256) parts.push(`content changed (sha256 ${before.sha256.slice(0, 16)}… → ${after.sha256.slice(0, 16)}…, ${before.size} → ${after.size} bytes)`);
    if (before.mode !== after.mode) parts.push(`mode ${before.mode.toString(8).padStart(4, '0')} → ${after.mode.toString(8).padStart(4, '0')}`);
    return parts.length ? parts.join('; ') : null;
  }
  return null;
}

const packageLabel = (key: string, version: string) => {
  const i = key.lastIndexOf(':');
  return `${key.slice(0, i)} ${version} (${key.slice(i + 1)})`;
};

export function diffSnapshots(base: Snapshot, now: Snapshot): TamperChange[] {
  const changes: TamperChange[] = [];
  for (const [path, before] of Object.entries(base.files)) {
    const after = now.files[path];
    if (!after) changes.push({ path, kind: 'removed', detail: `managed file removed (${describeFile(before)})` });
    else {
      const detail = fileChange(before, after);
      if (detail) changes.push({ path, kind: 'modified', detail });
    }
  }
  for (const [path, after] of Object.entries(now.files)) {
    if (!base.files[path]) changes.push({ path, kind: 'added', detail: `file added to a managed path (${describeFile(after)})` });
  }

  const statusPath = now.dpkg.statusPath;
  const pkgChanges: TamperChange[] = [];
  for (const [key, version] of Object.entries(now.dpkg.packages)) {
    const was = base.dpkg.packages[key];
    if (was === undefined) pkgChanges.push({ path: statusPath, kind: 'package', detail: `installed outside TIPS: ${packageLabel(key, version)}` });
    else if (was !== version) pkgChanges.push({ path: statusPath, kind: 'package', detail: `changed outside TIPS: ${packageLabel(key, was)} → ${version}` });
  }
  for (const [key, version] of Object.entries(base.dpkg.packages)) {
    if (now.dpkg.packages[key] === undefined) pkgChanges.push({ path: statusPath, kind: 'package', detail: `removed outside TIPS: ${packageLabel(key, version)}` });
  }
  if (pkgChanges.length === 0 && base.dpkg.statusSha256 !== now.dpkg.statusSha256) {
    pkgChanges.push({
      path: statusPath,
      kind: 'package',
      detail: `the dpkg database changed (sha256 ${base.dpkg.statusSha256?.slice(0, 16) ?? 'none'} → ${now.dpkg.statusSha256?.slice(0, 16) ?? 'none'}) with the same packages`,
    });
  }
  changes.push(...pkgChanges);
  return changes.sort((x, y) => (x.path === y.path ? x.detail.localeCompare(y.detail) : x.path < y.path ? -1 : 1));
}
