import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestMaster } from '../apps/master/src/testing.ts';
import { cliAgainstTestMaster } from './helpers.ts';

// The real `tips` CLI against an in-process master (its test fixtures give owners and tokens).
let m: TestMaster;
let tips: Awaited<ReturnType<typeof cliAgainstTestMaster>>['run'];
beforeAll(async () => {
  ({ m, run: tips } = await cliAgainstTestMaster());
});
afterAll(async () => m.close());

// Each case spawns the CLI several times (tsx start-up): allow for a loaded 2-core machine.
describe('S6 S8 S11 tips ca / key / glaze push --sign-key / token / enrollment', { timeout: 90_000 }, () => {
  it('ca init writes an offline root and an intermediate, keys mode 0600, and never overwrites', async () => {
    const dir = join(m.dir, 'ca');
    const r = await tips(['ca', 'init', '--out', dir, '--name', 'Lab', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(statSync(out.rootKey).mode & 0o777).toBe(0o600);
    expect(statSync(out.intermediateKey).mode & 0o777).toBe(0o600);
    const again = await tips(['ca', 'init', '--out', dir]);
    expect(again.code).toBe(5);
    expect(again.stderr).toContain('file_exists');
    // Rotation: a new intermediate from the offline root, into a fresh directory.
    const rot = await tips(['ca', 'intermediate', '--root-dir', dir, '--out', join(m.dir, 'ca2'), '--json']);
    expect(rot.code, rot.stderr).toBe(0);
    expect(statSync(JSON.parse(rot.stdout).intermediateKey).mode & 0o777).toBe(0o600);
    expect((await tips(['ca', 'intermediate', '--root-dir', join(m.dir, 'nowhere'), '--out', join(m.dir, 'ca3')])).code).toBe(6);
  });

  it('key create keeps the private key local and registers the public key; glaze push --sign-key attaches a signed manifest', async () => {
    const keyFile = join(m.dir, 'laptop.pem');
    const c = await tips(['key', 'create', '--out', keyFile, '--register', 'laptop', '--json']);
    expect(c.code, c.stderr).toBe(0);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(JSON.parse(c.stdout).registered).toMatchObject({ name: 'laptop', serverHeld: false });
    const list = await tips(['key', 'list']);
    expect(list.stdout).toContain('laptop');
    expect(list.stdout).toContain('you');
    const image = join(m.dir, 'os.img');
    writeFileSync(image, 'an operating system');
    const p = await tips(['glaze', 'push', image, '--name', 'os', '--sign-key', keyFile, '--seq', '42', '--no-progress', '--json']);
    expect(p.code, p.stderr).toBe(0);
    expect(JSON.parse(p.stdout).manifest).toMatchObject({ sequenceNumber: '42', signedBy: { name: 'laptop' } });
    // A key the master does not know: refused, and the Glaze is not left behind unsigned.
    const stranger = join(m.dir, 'stranger.pem');
    expect((await tips(['key', 'create', '--out', stranger])).code).toBe(0);
    const bad = await tips(['glaze', 'push', image, '--name', 'os2', '--sign-key', stranger, '--no-progress']);
    expect(bad.code).toBe(6);
    expect(bad.stderr).toContain('manifest_untrusted');
    expect((await tips(['glaze', 'list'])).stdout).not.toContain('os2');
    const missing = await tips(['glaze', 'push', image, '--name', 'os3', '--sign-key', join(m.dir, 'nope.pem'), '--no-progress']);
    expect(missing.code).toBe(2);
  });

  it('token issue binds a holder key; introspect proves possession with --sign-key and is inactive without it', async () => {
    const keyFile = join(m.dir, 'holder.pem');
    expect((await tips(['key', 'create', '--out', keyFile])).code).toBe(0);
    const glaze = JSON.parse((await tips(['glaze', 'show', 'os', '--json'])).stdout);
    const issued = await tips(['token', 'issue', '--audience', 'urn:tips:master', '--scope', 'pull:glaze:os', '--holder-key', keyFile, '--ttl', '2', '--json']);
    expect(issued.code, issued.stderr).toBe(0);
    const t = JSON.parse(issued.stdout);
    expect(t.scope).toEqual([`pull:glaze:${glaze.id}`]);
    const ok = await tips(['token', 'introspect', t.cwt, '--audience', 'urn:tips:master', '--scope', `pull:glaze:${glaze.id}`, '--sign-key', keyFile, '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ active: true, pop: 'signature' });
    const noKey = await tips(['token', 'introspect', t.jwt, '--audience', 'urn:tips:master']);
    expect(noKey.code).toBe(8);
    expect(noKey.stdout).toContain('pop_required');
  });

  it('enrollment secrets are shown once at creation and never listed', async () => {
    await m.app.inject({ method: 'POST', url: '/api/v1/metals', headers: m.auth(m.alice.token), payload: { name: 'pi', interfaces: [{ name: 'eth0', mac: '02:00:00:00:cc:01', type: 'ethernet', pxe: true }] } });
    const c = await tips(['enrollment', 'secret', 'create', '--metal', 'pi', '--max-uses', '2', '--json']);
    expect(c.code, c.stderr).toBe(0);
    const s = JSON.parse(c.stdout);
    expect(s.secret).toMatch(/^est_/);
    const list = await tips(['enrollment', 'secret', 'list']);
    expect(list.stdout).toContain(s.id);
    expect(list.stdout).toContain('0/2');
    expect(list.stdout).not.toContain(s.secret);
    expect((await tips(['enrollment', 'secret', 'create'])).code).toBe(2);
  });
});
