// Debian 12's Node 18 (the `nodejs` package a metal installs), for running tips-client's bundle the
// way a metal does. `apt-get download` fetches nodejs, libnode108, the C library it needs that this
// machine lacks (libc-ares2) and the builtins Debian keeps outside the binary (acorn,
// cjs-module-lexer, undici); they are kept (debs/) and unpacked (root/) under ${TIPS_CACHE_DIR:-~/.cache/tips}/node18/<version>.
// Debian's node loads those builtins from /usr/share/nodejs, so it runs in a private mount namespace
// (unshare -m) with that directory overlaid — the host's /usr/share is never touched.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

const PACKAGES = ['nodejs', 'libnode108', 'libc-ares2', 'node-acorn', 'node-cjs-module-lexer', 'node-undici', 'node-busboy', 'node-xtend'];

/** The newest Node 18 the configured Debian archives offer ("18.20.4+dfsg-1~deb12u3"), if any. */
function candidate(): string | undefined {
  const r = spawnSync('apt-cache', ['madison', 'nodejs'], { encoding: 'utf8' });
  return /\|\s*(18\.[^\s|]+)\s*\|/.exec(r.stdout ?? '')?.[1];
}

/**
 * A command prefix that runs Debian 12's Node 18, or undefined when the packages cannot be fetched
 * (no apt, no archive) — the caller says so and uses this machine's node instead.
 */
export function debianNode18(): { argv: string[]; version: string; debs: string } | undefined {
  const version = candidate();
  if (!version) return undefined;
  const dir = join(process.env.TIPS_CACHE_DIR ?? join(homedir(), '.cache', 'tips'), 'node18', version.replace(/[^A-Za-z0-9.+~-]/g, '_'));
  const runner = join(dir, 'node18.sh');
  if (!existsSync(runner)) {
    const tmp = `${dir}.${process.pid}.tmp`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(join(tmp, 'debs'), { recursive: true });
    const pkgs = PACKAGES.map((p) => (p === 'nodejs' || p === 'libnode108' ? `${p}=${version}` : p));
    const dl = spawnSync('apt-get', ['download', ...pkgs], { cwd: join(tmp, 'debs'), encoding: 'utf8', timeout: 300_000 });
    if (dl.status !== 0) {
      rmSync(tmp, { recursive: true, force: true });
      return undefined;
    }
    for (const deb of readdirSync(join(tmp, 'debs'))) {
      const x = spawnSync('dpkg-deb', ['-x', join(tmp, 'debs', deb), join(tmp, 'root')], { encoding: 'utf8' });
      if (x.status !== 0) throw new Error(`dpkg-deb -x ${deb}: ${x.stderr}`);
    }
    writeFileSync(
      join(tmp, 'node18.sh'),
      `#!/bin/sh
D=$(dirname "$(readlink -f "$0")")/root
exec unshare -m --propagation private sh -c 'mount -t overlay overlay -o lowerdir='"$D"'/usr/share:/usr/share /usr/share && LD_LIBRARY_PATH='"$D"'/usr/lib/x86_64-linux-gnu exec '"$D"'/usr/bin/node "$@"' node18 "$@"
`,
      { mode: 0o755 },
    );
    try {
      renameSync(tmp, dir);
    } catch {
      // another run cached it first
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  const v = spawnSync(runner, ['--version'], { encoding: 'utf8' });
  if (v.status !== 0 || !v.stdout.startsWith('v18.')) throw new Error(`Debian's Node 18 does not start: ${v.stdout}${v.stderr}`);
  return { argv: [runner], version: v.stdout.trim(), debs: join(dir, 'debs') };
}
