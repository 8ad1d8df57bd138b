// The install environment `npm run build:installer` makes: Debian's kernel and an initramfs with
// Debian's Node 18 and the NIC/disk modules, cached under a key of their inputs.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from './helpers.ts';

const CACHE = join(process.env.TIPS_CACHE_DIR || join(homedir(), '.cache/tips'), 'installer');
let dir = '';

beforeAll(() => {
  const r = spawnSync(process.execPath, [join(ROOT, 'scripts/build-installer.mjs')], { encoding: 'utf8', timeout: 900_000 });
  if (r.status !== 0) throw new Error(`npm run build:installer failed: ${r.stdout}\n${r.stderr}`);
  dir = realpathSync(join(CACHE, 'current'));
}, 900_000);

// Booting this kernel and initramfs to the installer (udhcpc's lease, then the installer under Node 18)
// is e2e/phase1-qemu's: it boots them through iPXE and the installer runs to the end there.
describe('T13 Phase 1 install environment: the installer kernel and initramfs are built, keyed by their inputs', () => {
  it('builds vmlinuz + initrd.img under the cache, keyed by the inputs, with `current` pointing at it', () => {
    expect(existsSync(join(dir, 'vmlinuz'))).toBe(true);
    expect(existsSync(join(dir, 'initrd.img'))).toBe(true);
    expect(dir.startsWith(realpathSync(CACHE))).toBe(true);
    expect(dir.split('/').pop()).toMatch(/^[0-9a-f]{64}$/);
    const info = JSON.parse(readFileSync(join(dir, 'build.json'), 'utf8')) as { packages: Record<string, string>; modules: string[] };
    expect(info.packages.nodejs).toMatch(/^18\./);
    expect(info.modules).toEqual(expect.arrayContaining(['virtio_net.ko', 'virtio_blk.ko', 'e1000.ko', 'ext4.ko', 'loop.ko']));
  });
});
