// A throw-away PostgreSQL cluster for the store contract tests: its own data dir and socket,
// a random port on loopback, removed when the tests end.
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BIN = '/usr/lib/postgresql/15/bin';

export function startThrowawayPostgres() {
  const dir = mkdtempSync(join(tmpdir(), 'tips-pg-'));
  const data = join(dir, 'data');
  const port = 20000 + Math.floor(Math.random() * 20000);
  // initdb refuses to run as root: run the cluster as the postgres system user.
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    chownSync(dir, uid, gid);
  }
  const as = (args) => (asRoot ? ['runuser', ['-u', 'postgres', '--', ...args]] : [args[0], args.slice(1)]);
  const sh = (args) => {
    const [c, a] = as(args);
    const r = spawnSync(c, a, { stdio: ['ignore', 'pipe', 'pipe'] });
    if (r.status !== 0) throw new Error(`${args.join(' ')} failed: ${r.stderr}`);
  };
  sh([`${BIN}/initdb`, '-D', data, '-A', 'trust', '-U', 'tips', '--no-sync']);
  sh([
    `${BIN}/pg_ctl`, '-D', data, '-l', join(dir, 'log'), '-w', '-o',
    `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`, 'start',
  ]);
  sh([`${BIN}/createdb`, '-h', '127.0.0.1', '-p', String(port), '-U', 'tips', 'tips_test']);
  console.log(`Throw-away PostgreSQL on 127.0.0.1:${port}`);
  return {
    url: `postgres://tips@127.0.0.1:${port}/tips_test`,
    stop() {
      try {
        sh([`${BIN}/pg_ctl`, '-D', data, '-m', 'immediate', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
