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
 * Files read whole and kept while unchanged (inode, size and mtime): the boot programs (~100 KiB to
 * ~1 MiB) and the installer's kernel and initrd (~50 MiB together). A hundred metals booting at once
 * are served from the one copy in memory — written to their sockets without a read per request,
 * which is what lets one Node process keep up with nginx's sendfile (bench/pxe-scale.ts) — and
 * concurrent first requests share one read.
 */
export class SmallFileCache {
  private readonly entries = new Map<string, { ino: number; size: number; mtimeMs: number; data: Buffer }>();
  private readonly loading = new Map<string, Promise<Buffer>>();

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
    if (hit && hit.ino === st.ino && hit.size === st.size && hit.mtimeMs === st.mtimeMs) return { data: hit.data, mtimeMs: hit.mtimeMs };
    const key = `${path}\0${st.ino}:${st.size}:${st.mtimeMs}`;
    let load = this.loading.get(key);
    if (!load) {
      load = (async () => {
        const fh = await open(path, 'r');
        try {
          return await fh.readFile();
        } finally {
          await fh.close();
        }
      })();
      this.loading.set(key, load);
      load.then(
        (data) => {
          this.loading.delete(key);
          // Replaced while it was read: served once, not kept (the next request reads the new one).
          if (data.length === st.size) this.entries.set(path, { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, data });
        },
        () => this.loading.delete(key),
      );
    }
    const data = await load;
    return { data, mtimeMs: st.mtimeMs };
  }
}

export function bootProgramPath(ipxeDir: string, name: BootProgram): string {
  return join(ipxeDir, name);
}
