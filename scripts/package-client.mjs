#!/usr/bin/env node
// `npm run package:client`: the metal agent as a Debian package (contract B, issue 9 test 6).
// apps/client/dist/tips-client_<version>_all.deb holds
//   /usr/lib/tips-client/tips-client.cjs   the one-file bundle (scripts/build.mjs buildClient, node18)
//   /usr/bin/tips-client                   `exec /usr/bin/node …tips-client.cjs "$@"`
//   /lib/systemd/system/tips-client.service, tips-client-enroll.service
// Depends: nodejs (>= 18) — Debian 12's own package; no native addon, so Architecture: all.
// Built from a staging tree with dpkg-deb --root-owner-group, written beside its name and renamed.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { buildClient, CLIENT_BUNDLE } from './build.mjs';

const ROOT = resolve(import.meta.dirname, '..');
const APP = join(ROOT, 'apps/client');

export async function packageClient({ outDir = join(APP, 'dist'), quiet = false } = {}) {
  await buildClient();
  const { version } = JSON.parse(readFileSync(join(APP, 'package.json'), 'utf8'));
  const stage = join(outDir, `.deb-staging-${process.pid}`);
  rmSync(stage, { recursive: true, force: true });
  const put = (rel, data, mode = 0o644) => {
    const p = join(stage, rel);
    mkdirSync(join(p, '..'), { recursive: true });
    if (typeof data === 'string') writeFileSync(p, data);
    else copyFileSync(data.from, p);
    chmodSync(p, mode);
  };
  try {
    put('usr/lib/tips-client/tips-client.cjs', { from: CLIENT_BUNDLE });
    put('usr/bin/tips-client', '#!/bin/sh\nexec /usr/bin/node /usr/lib/tips-client/tips-client.cjs "$@"\n', 0o755);
    for (const u of ['tips-client.service', 'tips-client-enroll.service']) put(`lib/systemd/system/${u}`, { from: join(APP, 'debian', u) });
    put('usr/share/doc/tips-client/README.md', { from: join(APP, 'README.md') });
    mkdirSync(join(stage, 'etc/tips-client'), { recursive: true });
    const installedKb = Math.ceil(statSync(CLIENT_BUNDLE).size / 1024) + 16;
    put(
      'DEBIAN/control',
      [
        'Package: tips-client',
        `Version: ${version}`,
        'Architecture: all',
        'Section: admin',
        'Priority: optional',
        'Maintainer: TIPS <tips@localhost>',
        'Depends: nodejs (>= 18)',
        `Installed-Size: ${installedKb}`,
        'Description: TIPS client (TIPS-C), the agent on a metal',
        ' Enrolls the metal with its TIPS master over EST, renews its certificate,',
        ' pulls the Glazes of its Phase 2 Spaces, verifies their SUIT manifests',
        ' against its trust list, installs them power-safely and reports back.',
        '',
      ].join('\n'),
    );
    for (const s of ['postinst', 'prerm', 'postrm']) put(`DEBIAN/${s}`, { from: join(APP, 'debian', s) }, 0o755);
    const out = join(outDir, `tips-client_${version}_all.deb`);
    const tmp = `${out}.${process.pid}.tmp`;
    const r = spawnSync('dpkg-deb', ['--root-owner-group', '-Zxz', '--build', stage, tmp], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`dpkg-deb --build: ${r.stderr || r.stdout}`);
    renameSync(tmp, out);
    if (!quiet) process.stdout.write(`${out}\n`);
    return out;
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) await packageClient();
