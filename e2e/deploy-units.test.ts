import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from './helpers.ts';

/**
 * T7: the systemd units of docs/deploy.md as systemd itself reads them. `systemd-analyze verify`
 * must have nothing to say (an unknown or misspelt key is only a warning to systemd, so any output
 * fails), and `systemd-analyze security --offline` must find them hardened: the master with no
 * capability at all, the gateway with exactly what nftables and DHCP need.
 */
const UNITS = join(ROOT, 'deploy/systemd');
const dir = mkdtempSync(join(tmpdir(), 'tips-units-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The unit as shipped, with the interpreter this machine has (verify checks that ExecStart's program exists). */
function staged(name: string): string {
  const path = join(dir, name);
  writeFileSync(path, readFileSync(join(UNITS, name), 'utf8').replaceAll('/usr/bin/node ', `${process.execPath} `));
  return path;
}

const directives = (name: string, key: string) =>
  readFileSync(join(UNITS, name), 'utf8')
    .split('\n')
    .filter((l) => l.startsWith(`${key}=`))
    .map((l) => l.slice(key.length + 1));

function exposure(path: string): number {
  const r = spawnSync('systemd-analyze', ['security', '--offline=yes', '--no-pager', path], { encoding: 'utf8' });
  const m = /Overall exposure level for \S+: ([\d.]+)/.exec(r.stdout);
  if (!m) throw new Error(`systemd-analyze security: ${r.stdout}${r.stderr}`);
  return Number(m[1]);
}

describe('T7 deploy/systemd units', () => {
  it('pass systemd-analyze verify without a single warning', () => {
    for (const name of ['tips-master.service', 'tips-gateway.service']) {
      const r = spawnSync('systemd-analyze', ['verify', '--man=no', staged(name)], { encoding: 'utf8', cwd: dir });
      expect({ name, status: r.status, out: `${r.stdout}${r.stderr}`.trim() }).toEqual({ name, status: 0, out: '' });
    }
  });

  it('are hardened: strict read-only system, own state directory, capabilities limited to what each needs', () => {
    for (const name of ['tips-master.service', 'tips-gateway.service']) {
      expect(directives(name, 'ProtectSystem')).toEqual(['strict']);
      expect(directives(name, 'NoNewPrivileges')).toEqual(['yes']);
      expect(directives(name, 'ReadWritePaths')).toHaveLength(1);
    }
    expect(directives('tips-master.service', 'DynamicUser')).toEqual(['yes']);
    expect(directives('tips-master.service', 'CapabilityBoundingSet')).toEqual(['']);
    expect(directives('tips-gateway.service', 'User')).toEqual(['tips-gateway']);
    for (const key of ['CapabilityBoundingSet', 'AmbientCapabilities']) {
      expect(directives('tips-gateway.service', key).flatMap((v) => v.split(/\s+/)).sort()).toEqual(['CAP_NET_ADMIN', 'CAP_NET_BIND_SERVICE', 'CAP_NET_RAW']);
    }
    // systemd's own score (0 = locked down, 10 = exposed); "OK" is below 5.
    expect(exposure(staged('tips-master.service'))).toBeLessThanOrEqual(2);
    expect(exposure(staged('tips-gateway.service'))).toBeLessThanOrEqual(3);
  });
});
