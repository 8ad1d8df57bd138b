import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeJsonDurably } from '../state/files.ts';
import { archiveHandler } from './archive.ts';
import { scriptHandler } from './script.ts';
import { switchSymlink } from './switch.ts';
import { systemdServiceHandler } from './systemd-service.ts';
import { InstallError } from './types.ts';

const log = pino({ level: 'silent' });
let dir: string;
let state: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tips-client-install-'));
  state = join(dir, 'state');
  mkdirSync(state);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A .tar.gz made by GNU tar holding `files`. */
function tarball(name: string, files: Record<string, string>): string {
  const src = join(dir, `src-${name}`);
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(join(src, f, '..'), { recursive: true });
    writeFileSync(join(src, f), text);
  }
  const out = join(dir, `${name}.tar.gz`);
  execFileSync('tar', ['-czf', out, '-C', src, '.']);
  return out;
}
const glaze = (version: string, name = 'web') => ({ id: `glz_${version}`, name, version, sha256: '0'.repeat(64) });
const app = (...p: string[]) => join(state, 'apps', 'web', ...p);

describe('S12 D2 archive handler: unpack into a managed directory, switched atomically', () => {
  it('installs, switches current, keeps the previous version and prunes older ones', async () => {
    for (const v of ['1.0', '1.1', '1.2']) {
      await archiveHandler.install({ payloadPath: tarball(v, { 'bin/app': `v${v}`, 'etc/conf': 'x' }), glaze: glaze(v), stateDir: state, log });
      expect(readlinkSync(app('current'))).toBe(v);
      expect(readFileSync(app('current', 'bin/app'), 'utf8')).toBe(`v${v}`);
    }
    expect(existsSync(app('1.1'))).toBe(true);
    expect(existsSync(app('1.0'))).toBe(false);
    expect(await archiveHandler.recover(state, log)).toBe('clean');
  });

  it('a payload tar cannot read leaves the running version untouched and rejects', async () => {
    await archiveHandler.install({ payloadPath: tarball('1.0', { a: 'one' }), glaze: glaze('1.0'), stateDir: state, log });
    writeFileSync(join(dir, 'junk'), 'not a tar archive at all');
    const e = await archiveHandler.install({ payloadPath: join(dir, 'junk'), glaze: glaze('2.0'), stateDir: state, log }).catch((x) => x);
    expect(e).toBeInstanceOf(InstallError);
    expect(e.code).toBe('unpack_failed');
    expect(readlinkSync(app('current'))).toBe('1.0');
    expect(existsSync(app('2.0'))).toBe(false);
    expect(existsSync(join(state, 'install', 'archive.json'))).toBe(false);
  });

  it('refuses names that would escape the managed directory', async () => {
    const e = await archiveHandler.install({ payloadPath: tarball('x', { a: '1' }), glaze: glaze('1.0', '../etc'), stateDir: state, log }).catch((x) => x);
    expect(e.code).toBe('install_input_invalid');
    expect(existsSync(join(state, 'etc'))).toBe(false);
  });

  it('killed while unpacking: recover rolls back, the previous version stays current', async () => {
    await archiveHandler.install({ payloadPath: tarball('1.0', { a: 'one' }), glaze: glaze('1.0'), stateDir: state, log });
    // The state a kill -9 during unpack leaves: the journal and a half-filled staging directory.
    writeJsonDurably(join(state, 'install', 'archive.json'), { name: 'web', version: '2.0', previous: '1.0' });
    mkdirSync(app('.staging-2.0'));
    writeFileSync(app('.staging-2.0', 'half'), 'x');
    expect(await archiveHandler.recover(state, log)).toBe('rolled_back');
    expect(readlinkSync(app('current'))).toBe('1.0');
    expect(existsSync(app('.staging-2.0'))).toBe(false);
    expect(await archiveHandler.recover(state, log)).toBe('clean');
  });

  it('killed after the switch, before the journal was cleared: recover finishes', async () => {
    await archiveHandler.install({ payloadPath: tarball('1.0', { a: 'one' }), glaze: glaze('1.0'), stateDir: state, log });
    writeJsonDurably(join(state, 'install', 'archive.json'), { name: 'web', version: '2.0', previous: '1.0' });
    mkdirSync(app('2.0'));
    switchSymlink(app('current'), '2.0');
    expect(await archiveHandler.recover(state, log)).toBe('finished');
    expect(readlinkSync(app('current'))).toBe('2.0');
    expect(existsSync(app('1.0'))).toBe(true);
    expect(existsSync(join(state, 'install', 'archive.json'))).toBe(false);
  });
});

describe('S12 script handler: a signed installer program', () => {
  it('runs the payload with the Glaze in its environment; exit 0 commits', async () => {
    const p = join(dir, 'inst.sh');
    writeFileSync(p, `#!/bin/sh\necho "$TIPS_GLAZE_NAME $TIPS_GLAZE_VERSION" > ${join(dir, 'ran')}\n`);
    await scriptHandler().install({ payloadPath: p, glaze: glaze('3.0', 'tool'), stateDir: state, log });
    expect(readFileSync(join(dir, 'ran'), 'utf8')).toBe('tool 3.0\n');
    expect(readlinkSync(join(state, 'scripts', 'tool', 'current'))).toBe('3.0');
  });
  it('a failing installer rejects with its last line and commits nothing', async () => {
    const p = join(dir, 'bad.sh');
    writeFileSync(p, '#!/bin/sh\necho "disk full" >&2\nexit 3\n');
    const e = await scriptHandler().install({ payloadPath: p, glaze: glaze('3.1', 'tool'), stateDir: state, log }).catch((x) => x);
    expect(e.code).toBe('script_failed');
    expect(e.message).toContain('disk full');
    expect(existsSync(join(state, 'scripts', 'tool', 'current'))).toBe(false);
  });
});

describe('S12 D2 systemd-service handler: install, restart, health check, restore', () => {
  // systemctl is not running in this container; a recording stand-in answers is-active from a file.
  function fakeSystemctl(activeAnswer: string) {
    const calls = join(dir, 'calls');
    const bin = join(dir, 'systemctl');
    writeFileSync(join(dir, 'answer'), activeAnswer);
    writeFileSync(bin, `#!/bin/sh\necho "$*" >> ${calls}\n[ "$1" = is-active ] && { cat ${join(dir, 'answer')}; [ "$(cat ${join(dir, 'answer')})" = active ]; exit $?; }\nexit 0\n`, { mode: 0o755 });
    return { bin, calls: () => readFileSync(calls, 'utf8').trim().split('\n') };
  }
  const units = () => join(dir, 'units');

  it('a healthy unit stays installed', async () => {
    mkdirSync(units());
    const sc = fakeSystemctl('active');
    writeFileSync(join(dir, 'u'), '[Unit]\nDescription=web\n[Service]\nExecStart=/bin/true\n');
    await systemdServiceHandler({ unitDir: units(), systemctl: sc.bin, settleMs: 10 }).install({ payloadPath: join(dir, 'u'), glaze: glaze('1.0'), stateDir: state, log });
    expect(readFileSync(join(units(), 'web.service'), 'utf8')).toContain('ExecStart=/bin/true');
    expect(sc.calls()).toEqual(['daemon-reload', 'restart web.service', 'is-active web.service']);
  });

  it('an unhealthy unit is replaced by the previous one, restarted, and the install rejects', async () => {
    mkdirSync(units());
    writeFileSync(join(units(), 'web.service'), '[Service]\nExecStart=/bin/old\n');
    const sc = fakeSystemctl('failed');
    writeFileSync(join(dir, 'u'), '[Service]\nExecStart=/bin/false\n');
    const e = await systemdServiceHandler({ unitDir: units(), systemctl: sc.bin, settleMs: 10 })
      .install({ payloadPath: join(dir, 'u'), glaze: glaze('2.0'), stateDir: state, log })
      .catch((x) => x);
    expect(e.code).toBe('health_check_failed');
    expect(readFileSync(join(units(), 'web.service'), 'utf8')).toBe('[Service]\nExecStart=/bin/old\n');
    expect(sc.calls().slice(-2)).toEqual(['daemon-reload', 'restart web.service']);
  });

  it('killed before the check: recover restores the previous unit', async () => {
    mkdirSync(units());
    const sc = fakeSystemctl('active');
    const h = systemdServiceHandler({ unitDir: units(), systemctl: sc.bin, settleMs: 10 });
    writeFileSync(join(state, 'prev'), '[Service]\nExecStart=/bin/old\n');
    writeJsonDurably(join(state, 'install', 'systemd-service.json'), { unit: 'web.service', backup: join(state, 'prev') });
    writeFileSync(join(units(), 'web.service'), '[Service]\nExecStart=/bin/unchecked\n');
    expect(await h.recover(state, log)).toBe('rolled_back');
    expect(readFileSync(join(units(), 'web.service'), 'utf8')).toContain('/bin/old');
    expect(await h.recover(state, log)).toBe('clean');
  });
});
