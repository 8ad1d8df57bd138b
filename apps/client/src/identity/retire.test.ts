import { execFileSync } from 'node:child_process';
import { existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readRetirement, retiredFile, wipeCredentials } from './retire.ts';
import { activate, loadIdentity, newGeneration, recoverIdentity, writeCertificate, writeKey } from './store.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tips-client-retire-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function generation(name: string): string {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, `${name}.key`), '-subj', `/CN=${name}`, '-days', '3', '-out', join(dir, `${name}.crt`)], { stdio: 'ignore' });
  const g = newGeneration(join(dir, 'state'));
  writeKey(g, readFileSync(join(dir, `${name}.key`), 'utf8'));
  writeCertificate(g, readFileSync(join(dir, `${name}.crt`), 'utf8'));
  return g;
}

describe('S14 retirement wipes every credential, and a cut during the wipe is finished', () => {
  it('keys are overwritten with zeros before they are unlinked; certificates, generations and the secret file go; the record stays', () => {
    const state = join(dir, 'state');
    const a = generation('a');
    const b = generation('b');
    activate(state, b);
    // A hard link sees the inode the client wrote: after the wipe it must hold zeros only.
    mkdirSync(join(dir, 'spy'));
    linkSync(join(a, 'key.pem'), join(dir, 'spy', 'a.key'));
    linkSync(join(b, 'key.pem'), join(dir, 'spy', 'b.key'));
    const etc = join(dir, 'etc');
    mkdirSync(etc);
    writeFileSync(join(etc, 'enrollment.json'), '{"secretId":"ens_x","secret":"est_y"}', { mode: 0o600 });
    linkSync(join(etc, 'enrollment.json'), join(dir, 'spy', 'enrollment.json'));
    const r = wipeCredentials(state, join(etc, 'enrollment.json'), { code: 'metal_retired', serial: 'ab12', at: '2026-11-29T12:00:00.000Z' });
    expect(readdirSync(join(state, 'identity'))).toEqual([]);
    expect(existsSync(join(etc, 'enrollment.json'))).toBe(false);
    for (const f of ['a.key', 'b.key', 'enrollment.json']) {
      const bytes = readFileSync(join(dir, 'spy', f));
      expect(bytes.length).toBeGreaterThan(0);
      expect(bytes.every((x) => x === 0), f).toBe(true);
    }
    expect(loadIdentity(state)).toBeUndefined();
    expect(r).toMatchObject({ code: 'metal_retired', serial: 'ab12', at: '2026-11-29T12:00:00.000Z' });
    expect(r.wiped.filter((p) => p.endsWith('key.pem'))).toHaveLength(2);
    expect(readRetirement(state)).toEqual(r);
  });

  it('a wipe cut after the record (a kill -9) is finished by the next call; the first record stays', () => {
    const state = join(dir, 'state');
    activate(state, generation('a'));
    // The cut: the record is on disk, nothing wiped yet.
    mkdirSync(join(state, 'agent'), { recursive: true });
    writeFileSync(retiredFile(state), JSON.stringify({ code: 'metal_retired', serial: 'first', at: '2026-11-29T11:00:00.000Z', wiped: [] }));
    const r = wipeCredentials(state, join(dir, 'none.json'), { code: 'metal_retired', serial: 'second', at: '2026-11-29T12:00:00.000Z' });
    expect(r).toMatchObject({ serial: 'first', at: '2026-11-29T11:00:00.000Z' });
    expect(readdirSync(join(state, 'identity'))).toEqual([]);
    // Again: nothing left to do, nothing breaks.
    expect(wipeCredentials(state, join(dir, 'none.json'), { code: 'metal_retired', serial: null, at: 'x' }).wiped).toEqual(r.wiped);
  });
});

describe('S6 S14 a refused new identity: the previous one comes back, also after a cut', () => {
  it('the refused generation removed first leaves `current` dangling: recovery puts the previous pair in force', () => {
    const state = join(dir, 'state');
    const old = generation('old');
    activate(state, old);
    const next = generation('next');
    activate(state, next);
    // proveOrRollBack's first step, then the cut before it re-activates the previous pair.
    rmSync(next, { recursive: true, force: true });
    expect(() => loadIdentity(state)).toThrow();
    recoverIdentity(state);
    expect(loadIdentity(state)?.dir).toBe(old);
  });
});
