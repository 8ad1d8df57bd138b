import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, type RunningMaster, startMaster, tips } from './helpers.ts';

/**
 * The README's quick start, verbatim, against a real master process: T1 T3 T4 T12 T20.
 * The commands are read out of README.md so the README cannot drift from what works.
 */
let dir: string;
let master: RunningMaster;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tips-e2e-walk-'));
  master = await startMaster(['--data-dir', join(dir, 'master')]);
  env = { TIPS_CONFIG: join(dir, 'cli', 'config.json'), TIPS_URL: '', TIPS_TOKEN: '' };
  delete env.TIPS_URL;
  delete env.TIPS_TOKEN;
});
afterAll(async () => {
  await master?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function readmeWalkthrough(): string[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const block = /<!-- walkthrough -->\s*```(?:sh|bash)?\n([\s\S]*?)```/.exec(readme);
  if (!block) throw new Error('README.md has no <!-- walkthrough --> block');
  return block[1]!
    .split('\n')
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .filter((l) => l.startsWith('tips '));
}

describe('T1 T3 T4 T12 the README walk-through on a real master', () => {
  it('prints its URL and a one-time admin token on first start', () => {
    expect(master.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(master.adminToken).toMatch(/^tips_/);
  });

  it('runs every README command verbatim and ends with the metal, Space and Glaze in place', () => {
    const image = join(dir, 'raspios-lite.img');
    const bytes = Buffer.alloc(3 * 1024 * 1024 + 17);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + 7) & 0xff;
    writeFileSync(image, bytes);
    const sha = createHash('sha256').update(bytes).digest('hex');

    const lines = readmeWalkthrough();
    expect(lines.length).toBeGreaterThanOrEqual(6);
    const outputs: Record<string, string> = {};
    for (const line of lines) {
      const cmd = line
        .replace(/^tips /, '')
        .replace('http://127.0.0.1:8080', master.url)
        .replace(/--token \S+/, `--token ${master.adminToken}`)
        .replace('./raspios-lite.img', image);
      const r = tips(cmd, env);
      expect(r.status, `${line}\n${r.stderr}`).toBe(0);
      outputs[line.split(' ').slice(1, 3).join(' ')] = r.stdout;
    }
    expect(statSync(env.TIPS_CONFIG!).mode & 0o777).toBe(0o600);
    expect(outputs['glaze push']).toContain(sha);

    const shown = JSON.parse(outputs['metal show']!);
    expect(shown).toMatchObject({
      name: 'pi-07',
      interfaces: [
        { name: 'eth0', mac: 'dc:a6:32:01:02:03', type: 'ethernet', pxe: true },
        { name: 'wlan0', mac: 'dc:a6:32:01:02:04', type: 'wifi', pxe: false },
      ],
      spaces: [{ spaceName: 'base-os', phase: 1, interfaces: ['eth0'], isDefault: true }],
    });
    const glaze = JSON.parse(tips('glaze show raspios-2026.11 --json', env).stdout);
    expect(glaze).toMatchObject({ size: bytes.length, sha256: sha });
  });

  it('downloads what it uploaded, byte for byte', () => {
    const out = join(dir, 'pulled.img');
    const r = tips(['glaze', 'pull', 'raspios-2026.11', '-o', out, '--progress'], env);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/download raspios-2026\.11 \[.*\] 100%/);
    expect(readFileSync(out).equals(readFileSync(join(dir, 'raspios-lite.img')))).toBe(true);
  });

  it('shows a progress bar on upload when asked', () => {
    const f = join(dir, 'small.img');
    writeFileSync(f, Buffer.alloc(200_000, 1));
    const r = tips(['glaze', 'push', f, '--name', 'small', '--progress'], env);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/upload small\.img \[.*\] 100%/);
  });

  it('gives scripts reliable exit codes and one-line errors, never a stack trace', () => {
    const cases: [string, number, RegExp][] = [
      ['metal show nope', 4, /^error: metal_not_found: no metal "nope"/],
      ['metal create --name pi-07 --iface eth0=dc:a6:32:01:02:99,ethernet', 5, /^error: metal_name_taken/],
      ['metal create --name pi-09 --iface eth0=dc:a6:32:01:02:03', 5, /^error: mac_taken: MAC dc:a6:32:01:02:03 already belongs to a metal \(held by your metal "pi-07"/],
      ['metal create --name pi-10 --iface eth0=zz:a6:32:01:02:03', 6, /^error: invalid_value: .* \(field: interfaces\[0\]\.mac\)/],
      ['space add base-os pi-07 --iface wlan0 --default', 6, /^error: phase1_needs_one_pxe_interface/],
      ['glaze delete small', 0, /^$/],
      ['metal frobnicate', 2, /unknown command/],
    ];
    tips('space create --name apps --phase 2', env);
    cases.push(['space add apps pi-07 --iface wlan0 --default', 6, /^error: default_space_must_be_phase1/]);
    tips('space update base-os --glaze raspios-2026.11', env);
    cases.push(['glaze delete raspios-2026.11', 5, /^error: glaze_in_use/]);
    for (const [cmd, code, re] of cases) {
      const r = tips(cmd, env);
      expect(r.status, `${cmd}: ${r.stderr}`).toBe(code);
      expect(r.stderr.split('\n')[0], cmd).toMatch(re);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it('refuses a wrong token with exit code 3 and saves nothing', () => {
    const other = { ...env, TIPS_CONFIG: join(dir, 'other', 'config.json') };
    const r = tips(['login', '--url', master.url, '--token', 'tips_0000000000000000000000000000000000000000000'], other);
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/^error: unauthenticated/);
    expect(() => statSync(other.TIPS_CONFIG)).toThrow();
  });

  it('reports an unreachable master with exit code 7', () => {
    const r = tips(['whoami'], { ...env, TIPS_URL: 'http://127.0.0.1:1', TIPS_TOKEN: 'tips_x' });
    expect(r.status).toBe(7);
    expect(r.stderr).toMatch(/^error: unreachable/);
  });

  it('keeps its state across a restart on the same data dir (no second admin token)', async () => {
    await master.stop();
    master = await startMaster(['--data-dir', join(dir, 'master')]);
    expect(master.adminToken).toBeUndefined();
    const r = tips(['metal', 'list', '--json'], { ...env, TIPS_URL: master.url });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).map((m: { name: string }) => m.name)).toEqual(['pi-07']);
  });
});
