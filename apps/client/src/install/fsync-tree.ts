import { closeSync, fsyncSync, lstatSync, openSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** fsync of every regular file and directory under `root` (an unpacked tree, before it is switched in). */
export function fsyncTree(root: string): void {
  const st = lstatSync(root);
  if (st.isSymbolicLink()) return;
  if (st.isDirectory()) for (const e of readdirSync(root)) fsyncTree(join(root, e));
  if (!(st.isDirectory() || st.isFile())) return;
  const fd = openSync(root, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
