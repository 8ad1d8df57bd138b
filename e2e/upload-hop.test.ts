import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningMaster, startMaster, tips } from './helpers.ts';

/**
 * S11 the operator→master upload hop, end to end: a master started with --require-upload-token,
 * the real CLI, and a holder key made by openssl. An API token alone no longer uploads a Glaze.
 */
let dir: string;
let master: RunningMaster;
let env: NodeJS.ProcessEnv;
const admin = `tips_${randomBytes(32).toString('base64url')}`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tips-e2e-hop-'));
  master = await startMaster(['--data-dir', join(dir, 'master'), '--require-upload-token'], { TIPS_BOOTSTRAP_ADMIN_TOKEN: admin });
  env = { TIPS_URL: master.url, TIPS_TOKEN: admin, TIPS_CONFIG: join(dir, 'none.json') };
  execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', join(dir, 'holder.pem')]);
  writeFileSync(join(dir, 'os.img'), randomBytes(64 * 1024));
});
afterAll(async () => {
  await master?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('S11 operator→master upload hop with a proof-of-possession token', () => {
  it('refuses an upload with the API token alone, accepts it with a scoped token and the holder key', () => {
    expect(tips('space create --name base-os --phase 1', env).status).toBe(0);
    const img = join(dir, 'os.img');
    const bare = tips(['glaze', 'push', img, '--name', 'os', '--space', 'base-os', '--no-progress'], env);
    expect(bare.status).toBe(3);
    expect(bare.stderr).toMatch(/^error: upload_token_required/);

    const issued = tips(['token', 'issue', '--audience', 'urn:tips:master', '--scope', 'upload:space:base-os', '--holder-key', join(dir, 'holder.pem'), '--json'], env);
    expect(issued.status, issued.stderr).toBe(0);
    const cwt: string = JSON.parse(issued.stdout).cwt;

    const other = join(dir, 'other.pem');
    execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', other]);
    const stolen = tips(['glaze', 'push', img, '--name', 'os', '--space', 'base-os', '--upload-token', cwt, '--holder-key', other, '--no-progress'], env);
    expect(stolen.status).toBe(3);
    expect(stolen.stderr).toMatch(/^error: pop_invalid/);

    const ok = tips(['glaze', 'push', img, '--name', 'os', '--space', 'base-os', '--upload-token', cwt, '--holder-key', join(dir, 'holder.pem'), '--json', '--no-progress'], env);
    expect(ok.status, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ name: 'os', size: 64 * 1024 });
    expect(JSON.parse(tips('glaze list --json', env).stdout)).toHaveLength(1);
  });
});
