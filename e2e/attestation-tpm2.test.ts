import { type ChildProcess, spawnSync } from 'node:child_process';
import { createHash, createPublicKey, generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CborValue, decodeCbor, encodeCbor } from '@tips/suit';
import { startSwtpm } from '@tips/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTpmEvidence, tpmIdentity } from '../apps/client/src/onboarding/tpm-quote.ts';
import { ACTIVATION_KEY_FILE, openActivationKey } from '../apps/master/src/domains/attestation/activation-key.ts';
import { createTpm2Verifier, Tpm2EvidenceError } from '../apps/master/src/domains/attestation/tpm2.ts';
import type { AttestationContext } from '../apps/master/src/domains/attestation/verifier.ts';

// Two real TPM 2.0 simulators (Debian's swtpm) reached by tpm2-tools: the device's and another
// device's. No fake TPM; the verifier is the master's TypeScript code.
interface Tpm {
  dir: string;
  tcti: string;
  proc: ChildProcess;
}
const tpms: Tpm[] = [];


const tool = (t: Tpm, args: string[]) => {
  const r = spawnSync(args[0]!, args.slice(1), { cwd: t.dir, env: { ...process.env, TPM2TOOLS_TCTI: t.tcti }, encoding: 'utf8' });
  spawnSync('tpm2_flushcontext', ['-t'], { env: { ...process.env, TPM2TOOLS_TCTI: t.tcti } });
  return r;
};
const ok = (r: { status: number | null; stderr: string }) => expect(r.status, r.stderr).toBe(0);

async function startTpm(): Promise<Tpm> {
  const dir = mkdtempSync(join(tmpdir(), 'tips-e2e-tpm2-'));
  const sw = await startSwtpm(dir);
  const t: Tpm = { dir, tcti: sw.tcti, proc: sw.proc };
  tpms.push(t);
  // The device key, made the way `tips factory device create --tpm` makes it (fixedTPM ECDSA P-256, persistent).
  for (const args of [
    ['tpm2_createprimary', '-Q', '-C', 'o', '-g', 'sha256', '-G', 'ecc256', '-c', 'primary.ctx'],
    ['tpm2_create', '-Q', '-C', 'primary.ctx', '-G', 'ecc256:ecdsa-sha256', '-a', 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign', '-u', 'key.pub', '-r', 'key.priv'],
    ['tpm2_load', '-Q', '-C', 'primary.ctx', '-u', 'key.pub', '-r', 'key.priv', '-c', 'key.ctx'],
    ['tpm2_evictcontrol', '-Q', '-C', 'o', '-c', 'key.ctx', '0x81010001'],
    ['tpm2_readpublic', '-Q', '-c', '0x81010001', '-f', 'pem', '-o', 'device.pem'],
  ])
    ok(tool(t, args));
  return t;
}

const deviceSpki = (t: Tpm) => new Uint8Array(createPublicKey(readFileSync(join(t.dir, 'device.pem'))).export({ type: 'spki', format: 'der' }));
/** The policy's digest, from the PCR values read independently of the quote (tpm2_pcrread). */
function pcrDigestNow(t: Tpm, pcrs: number[]): string {
  ok(tool(t, ['tpm2_pcrread', '-Q', `sha256:${pcrs.join(',')}`, '-o', 'pcrs.now']));
  return createHash('sha256').update(readFileSync(join(t.dir, 'pcrs.now'))).digest('hex');
}
const patch = (evidence: Uint8Array, key: string, value: CborValue) => {
  const m = decodeCbor(evidence) as Map<CborValue, CborValue>;
  m.set(key, value);
  return encodeCbor(m);
};

let a: Tpm;
let b: Tpm;
const PCRS = [0, 1, 7, 16];
const verifier = createTpm2Verifier();

async function attest(t: Tpm, nonce: Uint8Array, opts: { quoteNonce?: Uint8Array; pcrs?: number[] } = {}) {
  const identity = await tpmIdentity({ tcti: t.tcti });
  const challenge = verifier.challenge(identity, nonce);
  return makeTpmEvidence({ tcti: t.tcti, challenge, nonce: opts.quoteNonce ?? nonce, pcrs: opts.pcrs ?? PCRS, deviceHandle: '0x81010001' });
}

beforeAll(async () => {
  a = await startTpm();
  b = await startTpm();
}, 120_000);
afterAll(async () => {
  for (const t of tpms) {
    if (t.proc.exitCode === null) {
      t.proc.kill();
      await once(t.proc, 'exit');
    }
    rmSync(t.dir, { recursive: true, force: true });
  }
});

describe('Z2 issue 11: the tpm2 verifier against a real TPM 2.0 (swtpm + tpm2-tools)', { timeout: 180_000 }, () => {
  it('a quote over the fresh nonce and the policy PCRs, by an AK activated under the EK, certifying the voucher key, passes; every tampering is refused with its reason', async () => {
    const ctx = (nonce: Uint8Array, over: Partial<AttestationContext> = {}): AttestationContext => ({ nonce, deviceKeySpki: deviceSpki(a), policy: { pcrs: PCRS, pcrDigest: pcrDigestNow(a, PCRS) }, ...over });
    const nonce = randomBytes(32);
    const good = await attest(a, nonce);
    const pass = await verifier.verify(good, ctx(nonce));
    expect(pass).toMatchObject({ ok: true, claims: { verifier: 'tpm2', ekAnchored: false, pcrDigest: pcrDigestNow(a, PCRS) } });
    if (!pass.ok) return;
    expect(Object.keys(pass.claims.pcrs as object)).toEqual(['0', '1', '7', '16']);
    // The same AK answers a second onboarding with a new nonce (it is made once, kept persistent).
    const n2 = randomBytes(32);
    expect((await verifier.verify(await attest(a, n2), ctx(n2))).ok).toBe(true);

    const refused = async (evidence: Uint8Array, c: AttestationContext) => {
      const r = await verifier.verify(evidence, c);
      expect(r.ok).toBe(false);
      return r.ok ? '' : r.reason;
    };

    // Replay: yesterday's evidence for today's nonce; and a quote qualified by a stale nonce.
    const today = randomBytes(32);
    expect(await refused(good, ctx(today))).toMatch(/^activation: /);
    const stale = await attest(a, today, { quoteNonce: nonce });
    expect(await refused(stale, ctx(today))).toMatch(/^quote: extraData is not this onboarding's nonce/);

    // Wrong selection: the device quotes fewer PCRs than the policy asks for.
    const fewer = randomBytes(32);
    expect(await refused(await attest(a, fewer, { pcrs: [0, 1, 7] }), ctx(fewer))).toMatch(/^quote: PCR selection \[0,1,7\] is not the policy's \[0,1,7,16\]/);

    // A flipped byte in the quote's signature, in the quote, in a reported PCR value.
    const sig = (decodeCbor(good) as Map<CborValue, CborValue>).get('signature') as Uint8Array;
    const flipped = sig.slice();
    flipped[10]! ^= 0x01;
    expect(await refused(patch(good, 'signature', flipped), ctx(nonce))).toMatch(/^quote: the signature does not verify under the AK/);
    const quote = ((decodeCbor(good) as Map<CborValue, CborValue>).get('quote') as Uint8Array).slice();
    quote[quote.length - 1]! ^= 0x01;
    expect(await refused(patch(good, 'quote', quote), ctx(nonce))).toMatch(/^quote: the signature does not verify/);
    const lie = new Map<CborValue, CborValue>(PCRS.map((i) => [i, new Uint8Array(32)]));
    (lie.get(16) as Uint8Array)[0] = 1;
    expect(await refused(patch(good, 'pcrs', lie), ctx(nonce))).toMatch(/^pcrs: the reported PCR values do not hash to the quote's pcrDigest/);

    // A device key other than the voucher's.
    const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ type: 'spki', format: 'der' });
    expect(await refused(good, ctx(nonce, { deviceKeySpki: new Uint8Array(other) }))).toMatch(/^device key: the TPM key certified is not the key the voucher binds/);

    // A PCR extended after the policy was set (a measured component changed): the quote is honest, the policy refuses it.
    const policy = ctx(nonce).policy;
    ok(tool(a, ['tpm2_pcrextend', `16:sha256=${createHash('sha256').update('tampered').digest('hex')}`]));
    const later = randomBytes(32);
    const extended = await attest(a, later);
    expect(await refused(extended, { nonce: later, deviceKeySpki: deviceSpki(a), policy })).toMatch(/^pcrs: digest [0-9a-f]{64} is not the policy's [0-9a-f]{64} \(a measured component changed\)/);
  });

  it('a master restarted between challenge and answer (or another replica on the same CA dir) still verifies: the activation key is <ca-dir>/tpm2-activation.key; a per-process key would not', async () => {
    const caDir = mkdtempSync(join(tmpdir(), 'tips-e2e-tpm2-ca-'));
    try {
      const before = createTpm2Verifier({ activationKey: await openActivationKey(caDir) });
      const nonce = randomBytes(32);
      const identity = await tpmIdentity({ tcti: a.tcti });
      const evidence = await makeTpmEvidence({ tcti: a.tcti, challenge: before.challenge(identity, nonce), nonce, pcrs: PCRS, deviceHandle: '0x81010001' });
      // The process that made the challenge is gone; the next one reads the key from the CA dir (0600, made once).
      expect(statSync(join(caDir, ACTIVATION_KEY_FILE)).mode & 0o777).toBe(0o600);
      const after = createTpm2Verifier({ activationKey: await openActivationKey(caDir) });
      const ctx: AttestationContext = { nonce, deviceKeySpki: deviceSpki(a), policy: { pcrs: PCRS, pcrDigest: pcrDigestNow(a, PCRS) } };
      expect((await after.verify(evidence, ctx)).ok).toBe(true);
      // What happened before: a fresh per-process key does not recognise the credential, nor does another CA dir's key.
      const perProcess = await createTpm2Verifier().verify(evidence, ctx);
      expect(perProcess.ok ? '' : perProcess.reason).toMatch(/^activation: /);
      const otherDir = mkdtempSync(join(tmpdir(), 'tips-e2e-tpm2-ca-'));
      const other = await createTpm2Verifier({ activationKey: await openActivationKey(otherDir) }).verify(evidence, ctx);
      rmSync(otherDir, { recursive: true, force: true });
      expect(other.ok ? '' : other.reason).toMatch(/^activation: /);
      // A damaged key file is refused at start, never replaced by a fresh one.
      writeFileSync(join(caDir, ACTIVATION_KEY_FILE), 'not hex\n');
      await expect(openActivationKey(caDir)).rejects.toThrow(/must hold 32 bytes as 64 hex digits/);
    } finally {
      rmSync(caDir, { recursive: true, force: true });
    }
  });

  it('another TPM cannot stand in: its AK is not activated under this EK, and it cannot unwrap this TPM\'s credential', async () => {
    const nonce = randomBytes(32);
    const fromB = await attest(b, nonce);
    const c: AttestationContext = { nonce, deviceKeySpki: deviceSpki(a), policy: { pcrs: PCRS } };
    // B's evidence claiming A's EK (a cloned identity), and A's evidence with B's AK swapped in.
    const aIdentity = decodeCbor(await tpmIdentity({ tcti: a.tcti })) as Map<CborValue, CborValue>;
    const bIdentity = decodeCbor(await tpmIdentity({ tcti: b.tcti })) as Map<CborValue, CborValue>;
    const claimA = await verifier.verify(patch(fromB, 'ek', aIdentity.get('ek')!), { ...c, deviceKeySpki: deviceSpki(b) });
    expect(claimA).toMatchObject({ ok: false, reason: expect.stringMatching(/^activation: /) });
    const fromA = await attest(a, nonce);
    const swapped = await verifier.verify(patch(fromA, 'ak', bIdentity.get('ak')!), c);
    expect(swapped).toMatchObject({ ok: false, reason: expect.stringMatching(/^activation: /) });
    // B's TPM itself refuses to unwrap a credential made for A's EK and AK.
    const forA = verifier.challenge(encodeCbor(aIdentity), nonce);
    await expect(makeTpmEvidence({ tcti: b.tcti, challenge: forA, nonce, pcrs: PCRS, deviceHandle: '0x81010001' })).rejects.toThrow(/tpm2_activatecredential/);
    // Pieces of genuine evidence recombined: B's certification in A's evidence, a quote offered as
    // a certification, the device key offered as the AK, a device key that is not fixedTPM.
    const get = (e: Uint8Array, k: string) => (decodeCbor(e) as Map<CborValue, CborValue>).get(k)!;
    const certOf = (e: Uint8Array) => get(e, 'akCertify') as Map<CborValue, CborValue>;
    expect(await verifier.verify(patch(fromA, 'akCertify', certOf(fromB)), c)).toMatchObject({ ok: false, reason: expect.stringMatching(/^akCertify: certifies another object than the device key/) });
    expect(await verifier.verify(patch(patch(fromA, 'akCertify', certOf(fromB)), 'device', get(fromB, 'device')), { ...c, deviceKeySpki: deviceSpki(b) })).toMatchObject({ ok: false, reason: expect.stringMatching(/^akCertify: signed by another key than the quote/) });
    const quoteAsCert = new Map<CborValue, CborValue>([['attest', get(fromA, 'quote')], ['signature', get(fromA, 'signature')]]);
    expect(await verifier.verify(patch(fromA, 'akCertify', quoteAsCert), c)).toMatchObject({ ok: false, reason: 'akCertify: expected TPM_ST_ATTEST_CERTIFY' });
    expect(await verifier.verify(patch(fromA, 'ak', get(fromA, 'device')), c)).toMatchObject({ ok: false, reason: expect.stringMatching(/^ak: attribute restricted is not set/) });
    const loose = (get(fromA, 'device') as Uint8Array).slice();
    loose[9]! &= ~0x02; // TPMA_OBJECT.fixedTPM, lowest byte of objectAttributes after size, type, nameAlg
    expect(await verifier.verify(patch(fromA, 'device', loose), c)).toMatchObject({ ok: false, reason: expect.stringMatching(/^device key: attribute fixedTPM is not set/) });
    // B's genuine evidence is fine for B's own device key, and not for A's.
    expect((await verifier.verify(fromB, { ...c, deviceKeySpki: deviceSpki(b) })).ok).toBe(true);
    expect(await verifier.verify(fromB, c)).toMatchObject({ ok: false, reason: expect.stringMatching(/^device key: /) });
  });

  it('with EK roots configured, the EK must come as a certificate a trusted EK CA issued (read from the TPM\'s EK certificate NV index)', async () => {
    const openssl = (args: string[]) => ok(spawnSync('openssl', args, { cwd: b.dir, encoding: 'utf8' }));
    const ca = (name: string) => {
      openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '30', '-subj', `/CN=${name}`]);
      return new Uint8Array(new X509Certificate(readFileSync(join(b.dir, `${name}.pem`))).raw);
    };
    const vendor = ca('tpm-vendor-ek-ca');
    const stranger = ca('another-ca');
    // The vendor's certificate for B's EK, stored where TPM vendors (and swtpm_setup) put it.
    const bare = decodeCbor(await tpmIdentity({ tcti: b.tcti })) as Map<CborValue, CborValue>;
    writeFileSync(join(b.dir, 'ek.pub.pem'), createPublicKey({ key: Buffer.from(bare.get('ek') as Uint8Array), format: 'der', type: 'spki' }).export({ type: 'spki', format: 'pem' }));
    openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'csr.key', '-subj', '/CN=ek', '-out', 'ek.csr']);
    openssl(['x509', '-req', '-in', 'ek.csr', '-CA', 'tpm-vendor-ek-ca.pem', '-CAkey', 'tpm-vendor-ek-ca.key', '-force_pubkey', 'ek.pub.pem', '-days', '30', '-outform', 'DER', '-out', 'ek.der']);
    const size = readFileSync(join(b.dir, 'ek.der')).length;
    ok(tool(b, ['tpm2_nvdefine', '0x01c00002', '-C', 'o', '-s', String(size), '-a', 'ownerread|ownerwrite|authread|authwrite']));
    ok(tool(b, ['tpm2_nvwrite', '0x01c00002', '-C', 'o', '-i', 'ek.der']));

    const anchored = createTpm2Verifier({ ekRoots: [vendor] });
    const nonce = randomBytes(32);
    const identity = await tpmIdentity({ tcti: b.tcti });
    expect(Buffer.from((decodeCbor(identity) as Map<CborValue, CborValue>).get('ek') as Uint8Array)).toEqual(readFileSync(join(b.dir, 'ek.der')));
    const evidence = await makeTpmEvidence({ tcti: b.tcti, challenge: anchored.challenge(identity, nonce), nonce, pcrs: PCRS, deviceHandle: '0x81010001' });
    const c: AttestationContext = { nonce, deviceKeySpki: deviceSpki(b), policy: { pcrs: PCRS } };
    expect(await anchored.verify(evidence, c)).toMatchObject({ ok: true, claims: { ekAnchored: true } });
    // Another CA's verifier refuses the same TPM at either round; a bare EK key is refused when roots are set.
    const strict = createTpm2Verifier({ ekRoots: [stranger] });
    expect(() => strict.challenge(identity, nonce)).toThrow(Tpm2EvidenceError);
    expect(await strict.verify(evidence, c)).toMatchObject({ ok: false, reason: expect.stringMatching(/^ek: the EK certificate .* is not issued by a trusted EK CA/) });
    const fromA = await attest(a, nonce);
    expect(await anchored.verify(fromA, { ...c, deviceKeySpki: deviceSpki(a) })).toMatchObject({ ok: false, reason: expect.stringMatching(/^ek: a certificate is required/) });
  });
});
