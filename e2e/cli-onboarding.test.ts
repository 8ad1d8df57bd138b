import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningMaster, startMaster, tips } from './helpers.ts';

// The factory (no master), a distributor, and two owners each with a real `tips-master` process.
let dir: string;
let ownerA: RunningMaster;
let ownerB: RunningMaster;
const envFor = (m: RunningMaster | undefined): NodeJS.ProcessEnv => ({
  TIPS_CONFIG: join(dir, 'no-such-config.json'),
  // The factory must work with no master at all: point it at a port nobody listens on.
  TIPS_URL: m?.url ?? 'http://127.0.0.1:1',
  TIPS_TOKEN: m?.adminToken ?? 'tips_none',
});
const run = (args: string[], m?: RunningMaster) => tips(args, envFor(m));
const json = (args: string[], m?: RunningMaster) => {
  const r = run([...args, '--json'], m);
  expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout);
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tips-e2e-onboarding-'));
  ownerA = await startMaster(['--data-dir', join(dir, 'master-a')]);
  ownerB = await startMaster(['--data-dir', join(dir, 'master-b')]);
});
afterAll(async () => {
  await ownerA?.stop();
  await ownerB?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('Z3 S14 issue 11: vouchers from the factory through a distributor to the owner, imported into a real master', { timeout: 180_000 }, () => {
  const devices = () => join(dir, 'devices');

  it('factory: keys and devices without a master; each device has its key and credential (0600) and a voucher', () => {
    const mfr = json(['factory', 'key', 'create', '--out', join(dir, 'mfr.key')]);
    expect(statSync(mfr.privateKey).mode & 0o777).toBe(0o600);
    json(['factory', 'key', 'create', '--out', join(dir, 'dist.key')]);
    const made = json([
      'factory', 'device', 'create',
      '--manufacturer-key', join(dir, 'mfr.key'),
      '--rendezvous', 'https://rv.example.com:8041',
      '--info', 'vendor=acme', '--info', 'class=sensor',
      '--count', '3', '--out-dir', devices(),
    ]);
    expect(made.devices).toHaveLength(3);
    for (const d of made.devices) {
      expect(statSync(d.deviceKey).mode & 0o777).toBe(0o600);
      expect(statSync(d.credential).mode & 0o777).toBe(0o600);
      expect(readFileSync(d.voucher, 'utf8')).toMatch(/^-----BEGIN OWNERSHIP VOUCHER-----\n/);
      expect(d.owner).toBe(mfr.fingerprint);
    }
    // Not yet signed over to anyone: the owner's master would refuse it (no entry).
    const shown = json(['factory', 'voucher', 'show', made.devices[0].voucher]);
    expect(shown).toMatchObject({ deviceInfo: 'vendor=acme;class=sensor', rendezvous: ['https://rv.example.com:8041'], entries: [] });
  });

  it('extend twice: manufacturer → distributor → owner A (whose key the master made); only the current owner can extend', () => {
    const key = json(['voucher', 'owner-key', 'create', 'fleet', '--out', join(dir, 'owner-a.pub')], ownerA);
    expect(key.publicKey).toBe(readFileSync(join(dir, 'owner-a.pub'), 'utf8'));
    const files = readdirSync(devices()).filter((f) => f.endsWith('.voucher')).map((f) => join(devices(), f));
    const before = files.map((f) => readFileSync(f, 'utf8'));
    // The distributor cannot sign what the manufacturer still owns; nothing is rewritten.
    const early = run(['factory', 'voucher', 'extend', ...files, '--to', join(dir, 'owner-a.pub'), '--key', join(dir, 'dist.key')]);
    expect(early.status).toBe(6);
    expect(early.stderr).toContain('voucher_not_current_owner');
    expect(files.map((f) => readFileSync(f, 'utf8'))).toEqual(before);
    expect(json(['factory', 'voucher', 'extend', ...files, '--to', join(dir, 'dist.key.pub'), '--key', join(dir, 'mfr.key')]).vouchers.map((v: { entries: number }) => v.entries)).toEqual([1, 1, 1]);
    const last = json(['factory', 'voucher', 'extend', ...files, '--to', join(dir, 'owner-a.pub'), '--key', join(dir, 'dist.key')]);
    expect(last.vouchers.map((v: { entries: number; owner: string }) => [v.entries, v.owner])).toEqual(files.map(() => [2, key.fingerprint]));
    expect(json(['factory', 'voucher', 'show', files[0]!]).chain).toEqual({ valid: true });
  });

  it('owner A imports the directory: every device listed with status imported; importing again changes nothing', () => {
    const imported = json(['voucher', 'import', devices()], ownerA);
    expect(imported).toMatchObject({ imported: 3, unchanged: 0 });
    const list = json(['voucher', 'list'], ownerA);
    expect(list).toHaveLength(3);
    for (const v of list) expect(v).toMatchObject({ status: 'imported', entries: 2, deviceInfo: 'vendor=acme;class=sensor', onboardingKey: { name: 'fleet' } });
    const guid = list[0].guid;
    const shown = json(['voucher', 'show', guid], ownerA);
    expect(shown.ownerChain).toHaveLength(2);
    expect(shown.voucher).toBe(readFileSync(join(devices(), `${guid}.voucher`), 'utf8'));
    const again = json(['voucher', 'import', devices()], ownerA);
    expect(again).toMatchObject({ imported: 0, unchanged: 3 });
    expect(json(['voucher', 'list'], ownerA)).toEqual(list);
    const table = run(['voucher', 'list'], ownerA);
    expect(table.stdout).toContain(guid);
    expect(table.stdout).toContain('imported');
  });

  it("owner B's master refuses A's vouchers naming the file and the last entry, and imports nothing", async () => {
    json(['voucher', 'owner-key', 'create', 'fleet-b'], ownerB);
    const r = run(['voucher', 'import', devices()], ownerB);
    expect(r.status).toBe(6);
    expect(r.stderr).toMatch(/^error: voucher_wrong_owner: \S+\.voucher: vouchers\[0\]: entry 1: the chain ends at key sha256:/);
    expect(json(['voucher', 'list'], ownerB)).toEqual([]);
    const metrics = await (await fetch(`${ownerB.url}/metrics`)).text();
    expect(metrics).toMatch(/tips_master_vouchers_refused_total\{reason="voucher_wrong_owner"\} 1\b/);
    expect(metrics).not.toMatch(/tips_master_vouchers_imported_total\{result="imported"\} [1-9]/);
  });

  it('a tampered voucher is refused at the link that broke, and nothing is imported', () => {
    const made = json(['factory', 'device', 'create', '--manufacturer-key', join(dir, 'mfr.key'), '--rendezvous', 'https://rv.example.com:8041', '--info', 'vendor=acme', '--out-dir', join(dir, 'more'), '--to', join(dir, 'dist.key.pub')]);
    const file = made.devices[0].voucher;
    json(['factory', 'voucher', 'extend', file, '--to', join(dir, 'owner-a.pub'), '--key', join(dir, 'dist.key')]);
    // Cut the armour's base64 and put the voucher back with its last signature byte changed.
    const b64 = readFileSync(file, 'utf8').split('\n').filter((l) => !l.startsWith('-----')).join('');
    const bytes = Buffer.from(b64, 'base64');
    bytes[bytes.length - 1]! ^= 0x01;
    const tampered = join(dir, 'tampered.voucher');
    writeFileSync(tampered, bytes);
    const before = json(['voucher', 'list'], ownerA);
    const r = run(['voucher', 'import', tampered], ownerA);
    expect(r.status).toBe(6);
    expect(r.stderr).toContain('entry_signature_invalid');
    expect(r.stderr).toContain('entry 1: not signed by the key entry 0 hands ownership to');
    expect(json(['voucher', 'list'], ownerA)).toEqual(before);
    expect(run(['factory', 'voucher', 'show', tampered]).status).toBe(8);
  });
});
