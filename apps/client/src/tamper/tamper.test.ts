import { generateKeyPairSync } from 'node:crypto';
import { appendFileSync, chmodSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { baselinePath, readBaseline, writeBaseline } from './baseline.ts';
import { diffSnapshots, type TamperChange } from './diff.ts';
import { parseDpkgStatus, takeSnapshot } from './snapshot.ts';
import { startTamperWatch, type TamperWatch } from './watch.ts';

const STATUS = `Package: base-files
Status: install ok installed
Architecture: amd64
Version: 12.4

Package: old-thing
Status: deinstall ok config-files
Architecture: all
Version: 1.0

Package: tips-client
Status: install ok installed
Architecture: all
Version: 0.1.0
`;
const TINY = `\nPackage: tiny\nStatus: install ok installed\nArchitecture: all\nVersion: 1.0\n`;

let root: string;
let stateDir: string;
let app: string;
let statusFile: string;
const watches: TamperWatch[] = [];

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'tips-tamper-'));
  stateDir = join(root, 'var/lib/tips-client');
  app = join(root, 'opt/app');
  mkdirSync(join(app, 'bin'), { recursive: true });
  mkdirSync(join(root, 'var/lib/dpkg'), { recursive: true });
  writeFileSync(join(app, 'bin/server'), '#!/bin/sh\necho server\n', { mode: 0o755 });
  writeFileSync(join(app, 'config.json'), '{"port":80}\n');
  symlinkSync('bin/server', join(app, 'current'));
  statusFile = join(root, 'var/lib/dpkg/status');
  writeFileSync(statusFile, STATUS);
});
afterEach(() => {
  for (const w of watches.splice(0)) w.stop();
  rmSync(root, { recursive: true, force: true });
});

/** Replaces the dpkg status file the way dpkg does: status-new, then rename. */
function dpkgWrites(text: string) {
  writeFileSync(`${statusFile}-new`, text);
  renameSync(`${statusFile}-new`, statusFile);
}

async function until<T>(what: () => T | undefined, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = what();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function watchRoot(extra: Partial<Parameters<typeof startTamperWatch>[0]> = {}) {
  const reports: TamperChange[][] = [];
  const w = await startTamperWatch({ stateDir, managedPaths: [app], dpkgRoot: root, onTamper: (c) => void reports.push(c), fullCheckIntervalMs: 0, debounceMs: 50, ...extra });
  watches.push(w);
  return { w, reports };
}

describe('T16 tamper detection: snapshot and change list', () => {
  it('reads installed packages from the dpkg status, not removed ones', () => {
    expect(parseDpkgStatus(STATUS)).toEqual({ 'base-files:amd64': '12.4', 'tips-client:all': '0.1.0' });
  });

  it('names every change: content, mode, symlink, added, removed, packages', () => {
    const base = takeSnapshot({ managedPaths: [app], dpkgRoot: root });
    expect(diffSnapshots(base, takeSnapshot({ managedPaths: [app], dpkgRoot: root }))).toEqual([]);
    writeFileSync(join(app, 'config.json'), '{"port":81}\n');
    chmodSync(join(app, 'bin/server'), 0o4755);
    unlinkSync(join(app, 'current'));
    symlinkSync('/bin/sh', join(app, 'current'));
    writeFileSync(join(app, 'bin/backdoor'), 'x');
    dpkgWrites(STATUS.replace('12.4', '12.5').replace(/Package: tips-client[\s\S]*$/, '') + TINY);
    const changes = diffSnapshots(base, takeSnapshot({ managedPaths: [app], dpkgRoot: root }));
    expect(changes).toEqual([
      { path: join(app, 'bin/backdoor'), kind: 'added', detail: expect.stringMatching(/^file added to a managed path \(sha256 /) },
      { path: join(app, 'bin/server'), kind: 'modified', detail: 'mode 0755 → 4755' },
      { path: join(app, 'config.json'), kind: 'modified', detail: expect.stringMatching(/^content changed/) },
      { path: join(app, 'current'), kind: 'modified', detail: 'symlink target bin/server → /bin/sh' },
      { path: statusFile, kind: 'package', detail: 'changed outside TIPS: base-files 12.4 (amd64) → 12.5' },
      { path: statusFile, kind: 'package', detail: 'installed outside TIPS: tiny 1.0 (all)' },
      { path: statusFile, kind: 'package', detail: 'removed outside TIPS: tips-client 0.1.0 (all)' },
    ]);
    rmSync(join(app, 'config.json'));
    expect(diffSnapshots(base, takeSnapshot({ managedPaths: [app], dpkgRoot: root }))).toContainEqual({
      path: join(app, 'config.json'),
      kind: 'removed',
      detail: expect.stringMatching(/^managed file removed/),
    });
  });

  it('a rewrite of the dpkg database with the same packages is still a change', () => {
    const base = takeSnapshot({ managedPaths: [app], dpkgRoot: root });
    dpkgWrites(STATUS.replace('Version: 12.4', 'Version: 12.4\nConffiles:\n /etc/x 0123'));
    expect(diffSnapshots(base, takeSnapshot({ managedPaths: [app], dpkgRoot: root }))).toEqual([
      { path: statusFile, kind: 'package', detail: expect.stringMatching(/^the dpkg database changed .* with the same packages$/) },
    ]);
  });

  it('a signed baseline verifies with the metal key; an edited one, another key or no signature does not', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    writeBaseline(stateDir, takeSnapshot({ managedPaths: [app], dpkgRoot: root }), privateKey);
    expect(readBaseline(stateDir, privateKey).state).toBe('ok');
    expect(readBaseline(stateDir, other)).toEqual({ state: 'invalid', reason: "the tamper baseline's signature does not verify" });
    const file = JSON.parse(readFileSync(baselinePath(stateDir), 'utf8'));
    // Hiding a package by editing the baseline: the digest no longer matches; recomputing it breaks the signature.
    file.body.snapshot.dpkg.packages['tiny:all'] = '1.0';
    writeFileSync(baselinePath(stateDir), JSON.stringify(file));
    expect(readBaseline(stateDir, privateKey)).toEqual({ state: 'invalid', reason: 'the tamper baseline does not match its SHA-256' });
    writeBaseline(stateDir, file.body.snapshot);
    expect(readBaseline(stateDir, privateKey)).toEqual({ state: 'invalid', reason: 'the tamper baseline is not signed' });
  });
});

describe('T16 tamper detection: the watch', () => {
  it('records the baseline at first start, reports nothing while nothing changed', async () => {
    const { w, reports } = await watchRoot();
    expect(readBaseline(stateDir).state).toBe('ok');
    expect(await w.check()).toEqual([]);
    expect(reports).toEqual([]);
    expect(w.watchedDirectories()).toEqual([app, join(app, 'bin'), join(root, 'var/lib/dpkg')]);
  });

  it('inotify: a dpkg install and a written managed file are reported, each once', async () => {
    const { reports } = await watchRoot();
    dpkgWrites(STATUS + TINY);
    const first = await until(() => reports[0]);
    expect(first).toEqual([{ path: statusFile, kind: 'package', detail: 'installed outside TIPS: tiny 1.0 (all)' }]);
    appendFileSync(join(app, 'config.json'), 'evil');
    const second = await until(() => reports[1]);
    expect(second.map((c) => c.kind)).toEqual(['modified', 'package']);
    // A new subdirectory is watched too: a file dropped into it is reported.
    mkdirSync(join(app, 'lib'));
    await new Promise((r) => setTimeout(r, 300));
    writeFileSync(join(app, 'lib/inject.so'), 'x');
    const third = await until(() => reports[2]);
    expect(third).toContainEqual(expect.objectContaining({ path: join(app, 'lib/inject.so'), kind: 'added' }));
    await new Promise((r) => setTimeout(r, 300));
    expect(reports).toHaveLength(3);
  });

  it('reports at start what changed while the agent was not running', async () => {
    (await watchRoot()).w.stop();
    rmSync(join(app, 'bin/server'));
    const { reports } = await watchRoot();
    expect(reports).toEqual([[expect.objectContaining({ path: join(app, 'bin/server'), kind: 'removed' })]]);
  });

  it('the periodic full check finds a change without inotify', async () => {
    const { w, reports } = await watchRoot({ inotify: false, fullCheckIntervalMs: 100 });
    expect(w.watchedDirectories()).toEqual([]);
    writeFileSync(join(app, 'config.json'), '{}');
    expect(await until(() => reports[0])).toEqual([expect.objectContaining({ path: join(app, 'config.json'), kind: 'modified' })]);
  });

  it('a failed report is retried until it is accepted', async () => {
    let calls = 0;
    const accepted: TamperChange[][] = [];
    const w = await startTamperWatch({
      stateDir,
      managedPaths: [app],
      dpkgRoot: root,
      debounceMs: 50,
      fullCheckIntervalMs: 0,
      retryMs: 100,
      onTamper: (c) => {
        calls++;
        if (calls < 3) throw new Error('master unreachable');
        accepted.push(c);
      },
    });
    watches.push(w);
    writeFileSync(join(app, 'config.json'), '{}');
    await until(() => accepted[0]);
    expect(calls).toBe(3);
  });

  it('what TIPS installs is signed off, not reported; a change after it is', async () => {
    const { w, reports } = await watchRoot();
    await w.whileInstalling(async () => {
      dpkgWrites(STATUS + TINY);
      writeFileSync(join(app, 'bin/server'), '#!/bin/sh\necho server 2\n');
      await new Promise((r) => setTimeout(r, 300));
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(reports).toEqual([]);
    expect(await w.check()).toEqual([]);
    writeFileSync(join(app, 'bin/server'), '#!/bin/sh\necho pwned\n');
    expect(await until(() => reports[0])).toEqual([expect.objectContaining({ path: join(app, 'bin/server'), kind: 'modified' })]);
  });

  it('a baseline edited to hide a change is itself reported', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const { w, reports } = await watchRoot({ key: privateKey });
    // Someone re-records the baseline without the metal key, after installing a package.
    dpkgWrites(STATUS + TINY);
    writeBaseline(stateDir, takeSnapshot({ managedPaths: [app], dpkgRoot: root }));
    expect(await w.check()).toEqual([{ path: baselinePath(stateDir), kind: 'modified', detail: 'the tamper baseline is not signed' }]);
    expect(reports.at(-1)).toEqual([{ path: baselinePath(stateDir), kind: 'modified', detail: 'the tamper baseline is not signed' }]);
  });
});
