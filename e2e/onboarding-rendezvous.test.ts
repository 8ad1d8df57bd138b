import { createPrivateKey, randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeDeviceCredential, decodeVoucher, readVoucherFile, signTo1d } from '@tips/onboarding';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OnboardingError, onboard } from '../apps/client/src/onboarding/onboard.ts';
import { type RunningMaster, startMaster, tips } from './helpers.ts';

// Two real `tips-master` processes: the manufacturer's rendezvous server and the owner's master.
// The device side is apps/client's onboarding code, run in this process against both over HTTP.
let dir: string;
let rv: RunningMaster;
let owner: RunningMaster;
const env = (m?: RunningMaster): NodeJS.ProcessEnv => ({ TIPS_CONFIG: join(dir, 'none.json'), TIPS_URL: m?.url ?? 'http://127.0.0.1:1', TIPS_TOKEN: m?.adminToken ?? 'tips_none' });
const json = (args: string[], m?: RunningMaster) => {
  const r = tips([...args, '--json'], env(m));
  expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout);
};
const device = (d: { guid: string; credential: string; deviceKey: string }) => ({
  credential: decodeDeviceCredential(readFileSync(d.credential)),
  key: createPrivateKey(readFileSync(d.deviceKey)),
});
const status = (guid: string) => json(['voucher', 'show', guid], owner).status;
const facts = () => ({ interfaces: [{ name: 'eth0', mac: `02:${randomBytes(5).toString('hex').replace(/(..)(?!$)/g, '$1:')}`, type: 'ethernet' as const, pxe: true }] });
async function refusal(p: Promise<unknown>): Promise<OnboardingError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof OnboardingError) return e;
    throw e;
  }
  throw new Error('expected the onboarding to be refused');
}

let made: { guid: string; credential: string; deviceKey: string; voucher: string }[];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tips-e2e-rv-'));
  rv = await startMaster(['--data-dir', join(dir, 'rv')]);
  owner = await startMaster(['--data-dir', join(dir, 'owner')]);
  json(['factory', 'key', 'create', '--out', join(dir, 'mfr.key')]);
  json(['factory', 'key', 'create', '--out', join(dir, 'dist.key')]);
  json(['voucher', 'owner-key', 'create', 'fleet', '--out', join(dir, 'owner.pub')], owner);
  json(['bootstrap', 'profile', 'create', 'any-device'], owner);
  made = json([
    'factory', 'device', 'create', '--manufacturer-key', join(dir, 'mfr.key'), '--rendezvous', rv.url,
    '--info', 'vendor=acme', '--count', '3', '--out-dir', join(dir, 'devices'), '--to', join(dir, 'dist.key.pub'),
  ]).devices;
  // The distributor keeps a copy of what it held before signing the devices over (for the replay below).
  copyFileSync(made[0]!.voucher, join(dir, 'distributor-copy.voucher'));
  json(['factory', 'voucher', 'extend', ...made.map((d) => d.voucher), '--to', join(dir, 'owner.pub'), '--key', join(dir, 'dist.key')]);
  expect(json(['voucher', 'import', join(dir, 'devices')], owner).imported).toBe(3);
});
afterAll(async () => {
  await rv?.stop();
  await owner?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('Z1 Z3 issue 11: first power-on finds the owner through rendezvous and proves the device key', { timeout: 180_000 }, () => {
  it('the owner registers devices at rendezvous (TO0): status rendezvous_registered', () => {
    const r = json(['voucher', 'register', made[0]!.guid, made[1]!.guid], owner);
    expect(r.map((x: { status: string; registered: string[] }) => [x.status, x.registered])).toEqual([
      ['rendezvous_registered', [rv.url]],
      ['rendezvous_registered', [rv.url]],
    ]);
    expect(status(made[2]!.guid)).toBe('imported');
  });

  it('a device proving another key is refused at rendezvous, and nothing changes', async () => {
    const d1 = device(made[1]!);
    const wrongKey = device(made[0]!).key;
    const e = await refusal(onboard(d1.credential, wrongKey, { facts: facts() }));
    expect(e).toMatchObject({ step: 'rendezvous', code: 'rendezvous_failed' });
    expect(e.message).toContain('proof_invalid');
    expect(status(made[1]!.guid)).toBe('rendezvous_registered');
  });

  it('a GUID rendezvous never saw is refused there; its status stays imported', async () => {
    const d2 = device(made[2]!);
    const e = await refusal(onboard(d2.credential, d2.key, { facts: facts() }));
    expect(e.message).toContain('guid_unknown');
    expect(status(made[2]!.guid)).toBe('imported');
  });

  it('an earlier owner (the distributor) cannot re-point the device at itself once the owner registered', async () => {
    const copy = readVoucherFile(readFileSync(join(dir, 'distributor-copy.voucher')));
    const guid = decodeVoucher(copy).header.guid;
    const to1d = signTo1d(createPrivateKey(readFileSync(join(dir, 'dist.key'))), { guid, addresses: ['http://127.0.0.1:9'], expiresAt: Math.floor(Date.now() / 1000) + 600 });
    const r = await fetch(`${rv.url}/api/rendezvous/v1/registrations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ voucher: Buffer.from(copy).toString('base64'), to1d: Buffer.from(to1d).toString('base64') }),
    });
    expect(r.status).toBe(409);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe('registration_superseded');
  });

  it('the device finds its owner (TO1), checks the owner against its voucher, proves its key (TO2): a metal, its setup sealed to it', async () => {
    const d0 = device(made[0]!);
    const f = facts();
    const result = await onboard(d0.credential, d0.key, { facts: f });
    expect(result).toMatchObject({ guid: made[0]!.guid, rendezvous: rv.url, owner: owner.url, status: 'registered', setup: { profile: 'any-device' } });
    expect(json(['metal', 'show', result.setup.metalId], owner).interfaces[0].mac).toBe(f.interfaces[0]!.mac);
    expect(json(['onboarding', 'show', made[0]!.guid], owner).status).toBe('registered');
    expect(status(made[0]!.guid)).toBe('onboarded');
    const list = json(['voucher', 'list'], owner);
    expect(list.map((v: { guid: string; status: string }) => [v.guid, v.status]).sort()).toEqual(
      [
        [made[0]!.guid, 'onboarded'],
        [made[1]!.guid, 'rendezvous_registered'],
        [made[2]!.guid, 'imported'],
      ].sort(),
    );
  });
});
