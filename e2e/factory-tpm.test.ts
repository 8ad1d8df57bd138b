import { spawnSync } from 'node:child_process';
import { createHash, createPublicKey, generateKeyPairSync, randomBytes, verify } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeDeviceCredential, readVoucherFile, verifyVoucher } from '@tips/onboarding';
import { type Swtpm, startSwtpm } from '@tips/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onboard } from '../apps/client/src/onboarding/onboard.ts';
import { makeTpmEvidence, tpmIdentity } from '../apps/client/src/onboarding/tpm-quote.ts';
import { tpmSigner } from '../apps/client/src/onboarding/tpm-signer.ts';
import { startMaster, tips } from './helpers.ts';

// A device whose key lives in a TPM 2.0: Debian's swtpm (a real TPM 2.0 simulator) reached by
// tpm2-tools, as a factory's programming station reaches a device's TPM. No fake TPM.
let dir: string;
let swtpm: Swtpm;
let tcti: string;


const tpm = (args: string[]) => spawnSync(args[0]!, args.slice(1), { cwd: dir, env: { ...process.env, TPM2TOOLS_TCTI: tcti }, encoding: 'utf8' });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tips-e2e-tpm-'));
  swtpm = await startSwtpm(dir);
  tcti = swtpm.tcti;
});
afterAll(async () => {
  await swtpm?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('Z2 Z3 issue 11: tips factory makes the device key inside a TPM 2.0 (swtpm + tpm2-tools)', { timeout: 120_000 }, () => {
  it('the voucher binds the TPM-held key; only the TPM can sign for it; a second device key at the same handle is refused', () => {
    const env = { TIPS_CONFIG: join(dir, 'none.json'), TIPS_URL: 'http://127.0.0.1:1', TIPS_TOKEN: 'tips_none' };
    expect(tips(['factory', 'key', 'create', '--out', join(dir, 'mfr.key')], env).status).toBe(0);
    const owner = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    writeFileSync(join(dir, 'owner.pub'), owner.publicKey.export({ type: 'spki', format: 'pem' }));
    const args = ['factory', 'device', 'create', '--manufacturer-key', join(dir, 'mfr.key'), '--rendezvous', 'https://rv.example.com:8041', '--info', 'vendor=acme', '--to', join(dir, 'owner.pub'), '--tpm', tcti, '--json'];
    const r = tips([...args, '--out-dir', join(dir, 'out')], env);
    expect(r.status, r.stderr).toBe(0);
    const device = JSON.parse(r.stdout).devices[0];
    expect(device.deviceKey.endsWith('device.tpm')).toBe(true);
    const record = JSON.parse(readFileSync(device.deviceKey, 'utf8'));
    expect(record.tpm2).toEqual({ handle: '0x81010001', alg: 'ecdsa-p256-sha256' });
    expect(existsSync(join(dir, 'out', device.guid, 'device.key'))).toBe(false);

    // The voucher's device key is the TPM's persistent key, read back from the TPM itself.
    const v = verifyVoucher(readVoucherFile(readFileSync(device.voucher)), [owner.publicKey]);
    expect(tpm(['tpm2_readpublic', '-Q', '-c', '0x81010001', '-f', 'pem', '-o', 'tpm.pem']).status).toBe(0);
    expect(v.deviceKey.key.export({ type: 'spki', format: 'pem' })).toBe(createPublicKey(readFileSync(join(dir, 'tpm.pem'))).export({ type: 'spki', format: 'pem' }));
    expect(record.publicKey).toBe(readFileSync(join(dir, 'tpm.pem'), 'utf8'));

    // Possession: a fresh nonce signed inside the TPM verifies under the voucher's device key.
    const nonce = randomBytes(32);
    writeFileSync(join(dir, 'nonce'), nonce);
    const signed = tpm(['tpm2_sign', '-c', '0x81010001', '-g', 'sha256', '-s', 'ecdsa', '-f', 'plain', '-o', 'sig.der', 'nonce']);
    expect(signed.status, signed.stderr).toBe(0);
    tpm(['tpm2_flushcontext', '-s']);
    const sig = readFileSync(join(dir, 'sig.der'));
    expect(verify('sha256', nonce, { key: v.deviceKey.key, dsaEncoding: 'der' }, sig)).toBe(true);
    expect(verify('sha256', randomBytes(32), { key: v.deviceKey.key, dsaEncoding: 'der' }, sig)).toBe(false);

    // The TPM already holds this device's key: a second run is refused and writes nothing.
    const again = tips([...args, '--out-dir', join(dir, 'out2')], env);
    expect(again.status).toBe(5);
    expect(again.stderr).toContain('tpm_handle_in_use');
    expect(existsSync(join(dir, 'out2')) ? readdirSync(join(dir, 'out2')) : []).toEqual([]);
    // --tpm is one device.
    expect(tips([...args, '--out-dir', join(dir, 'out3'), '--count', '2'], env).status).toBe(2);
  });
});

describe('Z1 Z2 issue 11: a device whose key lives in the TPM onboards with the tpm2 verifier; a tampered PCR is refused', { timeout: 240_000 }, () => {
  it('every proof is signed inside the TPM; the quote over PCR 16 must match the profile; tampered → refused, nothing created; restored → a metal', async () => {
    const rv = await startMaster(['--data-dir', join(dir, 'rv')]);
    const owner = await startMaster(['--data-dir', join(dir, 'owner')]);
    try {
      const env = (m?: { url: string; adminToken?: string }) => ({ TIPS_CONFIG: join(dir, 'none.json'), TIPS_URL: m?.url ?? 'http://127.0.0.1:1', TIPS_TOKEN: m?.adminToken ?? 'tips_none' });
      const ok = (r: { status: number; stderr: string; stdout: string }) => {
        expect(r.status, r.stderr).toBe(0);
        return r.stdout;
      };
      const json = (m: { url: string; adminToken?: string }, args: string[]) => JSON.parse(ok(tips([...args, '--json'], env(m))));
      ok(tips(['voucher', 'owner-key', 'create', 'fleet', '--out', join(dir, 'fleet.pub')], env(owner)));
      if (!existsSync(join(dir, 'mfr.key'))) ok(tips(['factory', 'key', 'create', '--out', join(dir, 'mfr.key')], env()));
      const made = JSON.parse(
        ok(tips(['factory', 'device', 'create', '--manufacturer-key', join(dir, 'mfr.key'), '--rendezvous', rv.url, '--info', 'vendor=acme', '--to', join(dir, 'fleet.pub'), '--tpm', tcti, '--tpm-handle', '0x81010002', '--out-dir', join(dir, 'tpm-devices'), '--json'], env())),
      ).devices[0];
      ok(tips(['voucher', 'import', made.voucher], env(owner)));
      ok(tips(['voucher', 'register', made.guid], env(owner)));
      // The golden value: PCR 16 as it is now (all zero after reset), SHA-256 over the selection.
      expect(tpm(['tpm2_pcrreset', '16']).status).toBe(0);
      const golden = createHash('sha256').update(Buffer.alloc(32)).digest('hex');
      ok(tips(['bootstrap', 'profile', 'create', 'tpm-devices', '--attestation', 'tpm2', '--pcr', '16', '--pcr-digest', golden], env(owner)));
      const credential = decodeDeviceCredential(readFileSync(made.credential));
      const signer = tpmSigner(JSON.parse(readFileSync(made.deviceKey, 'utf8')), tcti);
      const facts = { interfaces: [{ name: 'eth0', mac: '02:7e:00:00:00:01', type: 'ethernet' as const, pxe: true }] };
      const device = async () => ({
        identity: await tpmIdentity({ tcti }),
        evidence: (challenge: Uint8Array, nonce: Uint8Array, pcrs: number[]) => makeTpmEvidence({ tcti, challenge, nonce, pcrs, deviceHandle: '0x81010002' }),
      });
      const metals = () => json(owner, ['metal', 'list']).length;

      // A measured component changed: PCR 16 extended. The quote is genuine, its PCRs are not the profile's.
      expect(tpm(['tpm2_pcrextend', `16:sha256=${'ab'.repeat(32)}`]).status).toBe(0);
      const before = metals();
      const refused = await onboard(credential, signer, { facts, tpm: await device() }).then(
        () => undefined,
        (e: unknown) => e as { code: string; message: string },
      );
      expect(refused?.code).toBe('attestation_failed');
      expect(refused?.message).toMatch(/tpm2: pcrs: digest [0-9a-f]{64} is not the policy's/);
      const record = json(owner, ['onboarding', 'show', made.guid]);
      expect(record).toMatchObject({ status: 'failed', verifier: 'tpm2' });
      expect(record.reason).toMatch(/attestation_failed: tpm2: pcrs: digest/);
      expect(metals()).toBe(before);

      // A device without its TPM evidence is refused too (the profile asks for tpm2).
      const noTpm = await onboard(credential, signer, { facts }).then(
        () => undefined,
        (e: unknown) => e as { code: string },
      );
      expect(noTpm?.code).toBe('attestation_failed');
      expect(metals()).toBe(before);

      // Restored: the same device onboards; every proof signed in the TPM, the quote over the golden PCR.
      expect(tpm(['tpm2_pcrreset', '16']).status).toBe(0);
      const result = await onboard(credential, signer, { facts, tpm: await device() });
      expect(result).toMatchObject({ guid: made.guid, owner: owner.url, status: 'registered', setup: { profile: 'tpm-devices' } });
      expect(json(owner, ['onboarding', 'show', made.guid])).toMatchObject({ status: 'registered', verifier: 'tpm2', metal: result.setup.metalId });
      expect(json(owner, ['voucher', 'show', made.guid]).status).toBe('onboarded');
      expect(metals()).toBe(before + 1);
    } finally {
      await rv.stop();
      await owner.stop();
    }
  });
});
