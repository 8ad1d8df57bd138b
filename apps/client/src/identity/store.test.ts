import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { activate, loadIdentity, newGeneration, recoverIdentity, writeCertificate, writeKey } from './store.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tips-client-store-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A self-signed P-256 key pair from openssl (a peer we did not write), valid from `days` ago. */
function pair(name: string): { key: string; cert: string } {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, `${name}.key`), '-subj', `/CN=${name}`, '-days', '3', '-out', join(dir, `${name}.crt`)], { stdio: 'ignore' });
  return { key: readFileSync(join(dir, `${name}.key`), 'utf8'), cert: readFileSync(join(dir, `${name}.crt`), 'utf8') };
}

describe('S6 S12 the metal credential survives a cut at any point', () => {
  it('a generation is in force only once activated', () => {
    const p = pair('a');
    const g = newGeneration(dir);
    writeKey(g, p.key);
    expect(loadIdentity(dir)).toBeUndefined();
    writeCertificate(g, p.cert);
    activate(dir, g);
    expect(loadIdentity(dir)?.certPem).toBe(p.cert);
  });

  it('recovery puts a finished but unactivated renewal in force and drops a half-made one', async () => {
    const a = pair('a');
    const g1 = newGeneration(dir);
    writeKey(g1, a.key);
    writeCertificate(g1, a.cert);
    activate(dir, g1);
    await new Promise((r) => setTimeout(r, 1100)); // the next certificate starts a second later
    const b = pair('b');
    const g2 = newGeneration(dir);
    writeKey(g2, b.key);
    writeCertificate(g2, b.cert); // cut here: renewed at the master, not activated
    const g3 = newGeneration(dir);
    writeKey(g3, pair('c').key); // cut here: the request never came back
    const r = recoverIdentity(dir);
    expect(r.activated).toBe(g2);
    expect(loadIdentity(dir)?.certPem).toBe(b.cert);
    expect(existsSync(g1)).toBe(false);
    expect(existsSync(g3)).toBe(false);
    expect(readdirSync(join(dir, 'identity')).sort()).toEqual(['current', g2.split('/').pop()].sort());
  });

  it('a certificate that is not for the key is never in force', () => {
    const a = pair('a');
    const b = pair('b');
    const g = newGeneration(dir);
    writeKey(g, a.key);
    writeCertificate(g, b.cert);
    expect(recoverIdentity(dir).activated).toBeUndefined();
    expect(existsSync(g)).toBe(false);
  });
});
