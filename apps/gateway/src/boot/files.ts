// The only files the boot services hand out by name: iPXE's network boot programs (Debian package
// `ipxe`, /usr/lib/ipxe) and the installer's kernel and initrd. A requested name is matched against
// a fixed list, never joined onto a directory, so no request can name another file.
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** iPXE builds served over TFTP (first stage) and HTTP: BIOS (UNDI) and UEFI. */
export const BOOT_PROGRAMS = ['undionly.kpxe', 'ipxe.efi'] as const;
export type BootProgram = (typeof BOOT_PROGRAMS)[number];

/** The installer's files in `--installer-dir`, by their URL name. */
export const INSTALLER_FILES = ['vmlinuz', 'initrd.img'] as const;

export type Lookup = { kind: 'ok'; name: BootProgram } | { kind: 'traversal' } | { kind: 'not_found' };

/**
 * Maps a requested name (TFTP filename or URL path segment) to a boot program. One leading `/` is
 * tolerated (some ROMs send `/undionly.kpxe`); any other separator or `..` is a traversal attempt.
 */
export function lookupBootProgram(requested: string): Lookup {
  const name = requested.startsWith('/') ? requested.slice(1) : requested;
  if (name.includes('/') || name.includes('\\') || name.includes('..') || name.includes('\0')) return { kind: 'traversal' };
  const found = BOOT_PROGRAMS.find((p) => p === name);
  return found ? { kind: 'ok', name: found } : { kind: 'not_found' };
}

export interface FileBytes {
  data: Buffer;
  mtimeMs: number;
}

/**
 * Small files read whole and kept while unchanged (size and mtime): the boot programs are ~100 KiB
 * to ~1 MiB and a hundred metals booting at once should not read them a hundred times.
 */
export class SmallFileCache {
  private readonly entries = new Map<string, { size: number; mtimeMs: number; data: Buffer }>();

  constructor(private readonly maxBytes = 16 * 1024 * 1024) {}

  /** undefined when the file does not exist or is not a regular file. */
  async read(path: string): Promise<FileBytes | undefined> {
    let st: Awaited<ReturnType<typeof stat>>;
    try {
      st = await stat(path);
    } catch {
      return undefined;
    }
    if (!st.isFile() || st.size > this.maxBytes) return undefined;
    const hit = this.entries.get(path);
    if (hit && hit.size === st.size && hit.mtimeMs === st.mtimeMs) return { data: hit.data, mtimeMs: hit.mtimeMs };
    const fh = await open(path, 'r');
    try {
      const data = await fh.readFile();
      this.entries.set(path, { size: data.length, mtimeMs: st.mtimeMs, data });
      return { data, mtimeMs: st.mtimeMs };
    } finally {
      await fh.close();
    }
  }
}

export function bootProgramPath(ipxeDir: string, name: BootProgram): string {
  return join(ipxeDir, name);
}
