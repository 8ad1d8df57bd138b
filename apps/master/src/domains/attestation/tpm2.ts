/**
 * The tpm2 verifier (Z2): a device proves, in TypeScript with node:crypto only, that
 *   1. its Attestation Key (AK: restricted, fixedTPM signing key) lives in the TPM that holds the
 *      Endorsement Key it names — by **credential activation** (TPM2_MakeCredential here, in TS;
 *      TPM2_ActivateCredential on the device). The EK is decrypt-only, so it cannot sign a
 *      certification of the AK; activation is how the TCG binds an AK to an EK (Part 1 §24).
 *   2. the PCRs the policy names have the values reported, with a TPM2_Quote by the AK over the
 *      onboarding's nonce (freshness) — magic, type, extraData, selection, pcrDigest, signature.
 *   3. the device key the voucher binds is inside the same TPM: a TPM2_Certify of it by the AK,
 *      naming a fixedTPM|fixedParent key whose public area is the voucher's key.
 *
 * Two rounds: the device sends its identity (`{ ek, ak }`, CBOR); `challenge(identity, nonce)`
 * answers with a credential the device can only unwrap inside the TPM holding that EK with that
 * AK loaded; the device then returns the credential in its evidence with the quote. The credential
 * is an HMAC under a key of this verifier over (nonce, AK name, EK), so the verifier keeps no
 * state between the rounds, and a credential unwrapped for one AK is worth nothing for another.
 *
 * Trust in the EK itself: with `ekRoots`, the EK must come as an X.509 certificate issued by one
 * of them (the TPM vendor's CA; swtpm_setup's local CA in tests). Without, any EK is accepted and
 * the claims say `ekAnchored: false` — the voucher (signed by the manufacturer) is then what says
 * this device is genuine; the TPM evidence still proves the key and the PCRs are the TPM's.
 */
import { createCipheriv, createHash, createHmac, createPublicKey, type KeyObject, constants as cryptoConstants, publicEncrypt, randomBytes, timingSafeEqual, verify as verifySignature, X509Certificate } from 'node:crypto';
import { type CborValue, decodeCbor, encodeCbor } from '@tips/suit';
import {
  parseTpm2bPublic,
  parseTpmsAttest,
  parseTpmtSignature,
  TPM_ALG_NULL,
  TPM_ALG_SHA256,
  TPM_ST_ATTEST_CERTIFY,
  TPM_ST_ATTEST_QUOTE,
  type Tpm2Public,
  type Tpm2Signature,
  TPMA_OBJECT,
  Tpm2FormatError,
} from './tpm2-structures.ts';
import type { AttestationContext, AttestationResult, AttestationVerifier } from './verifier.ts';

export class Tpm2EvidenceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Tpm2EvidenceError';
  }
}

const fail = (message: string): never => {
  throw new Tpm2EvidenceError(message);
};

const sha256 = (...parts: Uint8Array[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const equal = (a: Uint8Array, b: Uint8Array) => a.length === b.length && timingSafeEqual(a, b);
const u16 = (n: number) => new Uint8Array([n >> 8, n & 0xff]);
const u32 = (n: number) => new Uint8Array([(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};
const tpm2b = (b: Uint8Array) => concat(u16(b.length), b);

/** An object's Name (Part 1 §16): nameAlg ‖ H(TPMT_PUBLIC). */
export function objectName(pub: Tpm2Public): Uint8Array {
  return concat(u16(TPM_ALG_SHA256), sha256(pub.area));
}

/** The TPM key as a node KeyObject. */
export function publicKeyOf(pub: Tpm2Public): KeyObject {
  const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64url');
  if (pub.key.type === 'ecc') return createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: b64(pub.key.x), y: b64(pub.key.y) }, format: 'jwk' });
  const e = Buffer.from(u32(pub.key.exponent)).subarray(pub.key.exponent < 0x1000000 ? 1 : 0);
  return createPublicKey({ key: { kty: 'RSA', n: b64(pub.key.modulus), e: b64(e) }, format: 'jwk' });
}

/** KDFa (Part 1 §11.4.10.2) with HMAC-SHA-256. */
export function kdfa(key: Uint8Array, label: string, contextU: Uint8Array, contextV: Uint8Array, bits: number): Uint8Array {
  const out: Uint8Array[] = [];
  const labelBytes = concat(new TextEncoder().encode(label), new Uint8Array([0]));
  for (let i = 1, have = 0; have * 8 < bits; i++) {
    const block = new Uint8Array(createHmac('sha256', key).update(concat(u32(i), labelBytes, contextU, contextV, u32(bits))).digest());
    out.push(block);
    have += block.length;
  }
  return concat(...out).slice(0, bits / 8);
}

/**
 * TPM2_MakeCredential (Part 1 §24, Part 3 §12.6) for an RSA EK made from the TCG default template
 * (nameAlg SHA-256, AES-128-CFB): what only the TPM holding `ek` can unwrap, and only for the
 * object named `akName`. `seed` is injectable for tests.
 */
export function makeCredential(ek: KeyObject, akName: Uint8Array, credential: Uint8Array, seed: Uint8Array = randomBytes(32)): { credentialBlob: Uint8Array; encryptedSecret: Uint8Array } {
  if (ek.asymmetricKeyType !== 'rsa') fail('ek: expected an RSA Endorsement Key (TCG default template)');
  const encryptedSecret = new Uint8Array(publicEncrypt({ key: ek, padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', oaepLabel: Buffer.from('IDENTITY\0') }, seed));
  const symKey = kdfa(seed, 'STORAGE', akName, new Uint8Array(0), 128);
  const cipher = createCipheriv('aes-128-cfb', symKey, Buffer.alloc(16));
  const encIdentity = concat(new Uint8Array(cipher.update(tpm2b(credential))), new Uint8Array(cipher.final()));
  const hmacKey = kdfa(seed, 'INTEGRITY', new Uint8Array(0), new Uint8Array(0), 256);
  const outerHmac = new Uint8Array(createHmac('sha256', hmacKey).update(concat(encIdentity, akName)).digest());
  return { credentialBlob: concat(tpm2b(outerHmac), encIdentity), encryptedSecret };
}

function requireAttributes(pub: Tpm2Public, what: string, required: (keyof typeof TPMA_OBJECT)[]): void {
  for (const a of required) if (!(pub.attributes & TPMA_OBJECT[a])) fail(`${what}: attribute ${a} is not set (objectAttributes 0x${pub.attributes.toString(16).padStart(8, '0')})`);
}

/** The AK's public area: a restricted signing key generated in, and never leaving, its TPM. */
function parseAk(bytes: Uint8Array): Tpm2Public {
  const ak = parseTpm2bPublic(bytes);
  requireAttributes(ak, 'ak', ['fixedTPM', 'fixedParent', 'sensitiveDataOrigin', 'restricted', 'sign']);
  if (ak.attributes & TPMA_OBJECT.decrypt) fail('ak: a restricted signing key must not also decrypt');
  return ak;
}

interface ParsedEk {
  key: KeyObject;
  spki: Uint8Array;
  certificate?: X509Certificate;
}

function parseEk(bytes: Uint8Array): ParsedEk {
  let certificate: X509Certificate | undefined;
  let key: KeyObject;
  try {
    certificate = new X509Certificate(bytes);
    key = certificate.publicKey;
  } catch {
    try {
      key = createPublicKey({ key: Buffer.from(bytes), format: 'der', type: 'spki' });
    } catch {
      return fail('ek: expected an X.509 certificate or a SubjectPublicKeyInfo (DER)');
    }
  }
  if (key.asymmetricKeyType !== 'rsa' || key.asymmetricKeyDetails?.modulusLength !== 2048) fail('ek: expected an RSA 2048 Endorsement Key (TCG default EK template)');
  return { key, spki: new Uint8Array(key.export({ type: 'spki', format: 'der' })), certificate };
}

function verifyTpmSignature(key: Tpm2Public, data: Uint8Array, sig: Tpm2Signature, what: string): void {
  if (sig.hash !== TPM_ALG_SHA256) fail(`${what}: signature hash 0x${sig.hash.toString(16)}, expected SHA-256`);
  if (key.scheme.alg !== TPM_ALG_NULL && key.scheme.alg !== { ecdsa: 0x18, rsassa: 0x14, rsapss: 0x16 }[sig.alg]) fail(`${what}: signed with ${sig.alg}, which is not the AK's scheme`);
  const k = publicKeyOf(key);
  let ok: boolean;
  if (sig.alg === 'ecdsa') {
    if (key.key.type !== 'ecc' || sig.r.length > 32 || sig.s.length > 32) throw new Tpm2EvidenceError(`${what}: ECDSA signature does not fit a P-256 AK`);
    const p1363 = new Uint8Array(64);
    p1363.set(sig.r, 32 - sig.r.length);
    p1363.set(sig.s, 64 - sig.s.length);
    ok = verifySignature('sha256', data, { key: k, dsaEncoding: 'ieee-p1363' }, p1363);
  } else {
    if (key.key.type !== 'rsa') throw new Tpm2EvidenceError(`${what}: RSA signature by an ECC AK`);
    const padding = sig.alg === 'rsassa' ? cryptoConstants.RSA_PKCS1_PADDING : cryptoConstants.RSA_PKCS1_PSS_PADDING;
    ok = verifySignature('sha256', data, { key: k, padding, saltLength: cryptoConstants.RSA_PSS_SALTLEN_AUTO }, sig.sig);
  }
  if (!ok) fail(`${what}: the signature does not verify under the AK`);
}

type CborMap = Map<CborValue, CborValue>;
function field(m: CborMap, name: string): Uint8Array {
  const v = m.get(name);
  if (!(v instanceof Uint8Array)) fail(`evidence: "${name}" must be a byte string`);
  return v as Uint8Array;
}
function asMap(bytes: Uint8Array, what: string, keys: string[]): CborMap {
  let v: CborValue;
  try {
    v = decodeCbor(bytes);
  } catch (e) {
    return fail(`${what}: not CBOR (${(e as Error).message})`);
  }
  if (!(v instanceof Map)) return fail(`${what}: expected a CBOR map`);
  for (const k of v.keys()) if (typeof k !== 'string' || !keys.includes(k)) fail(`${what}: unexpected key ${JSON.stringify(k)}`);
  return v;
}

export interface Tpm2Identity {
  ek: Uint8Array;
  ak: Uint8Array;
}

export function encodeTpm2Identity(id: Tpm2Identity): Uint8Array {
  return encodeCbor(new Map<CborValue, CborValue>([['ek', id.ek], ['ak', id.ak]]));
}

export interface Tpm2Evidence {
  ek: Uint8Array;
  /** TPM2B_PUBLIC of the AK (its attributes and Name are what activation binds; an SPKI has neither). */
  ak: Uint8Array;
  /** The credential the device unwrapped with TPM2_ActivateCredential. */
  credential: Uint8Array;
  /** TPM2_Certify of the device key by the AK, and the device key's TPM2B_PUBLIC. */
  akCertify: { attest: Uint8Array; signature: Uint8Array };
  device: Uint8Array;
  quote: Uint8Array;
  signature: Uint8Array;
  pcrs: Record<number, Uint8Array>;
}

export function encodeTpm2Evidence(e: Tpm2Evidence): Uint8Array {
  return encodeCbor(
    new Map<CborValue, CborValue>([
      ['ek', e.ek],
      ['ak', e.ak],
      ['credential', e.credential],
      ['akCertify', new Map<CborValue, CborValue>([['attest', e.akCertify.attest], ['signature', e.akCertify.signature]])],
      ['device', e.device],
      ['quote', e.quote],
      ['signature', e.signature],
      ['pcrs', new Map<CborValue, CborValue>(Object.entries(e.pcrs).map(([k, v]) => [Number(k), v]))],
    ]),
  );
}

export function decodeTpm2Evidence(bytes: Uint8Array): Tpm2Evidence {
  const m = asMap(bytes, 'evidence', ['ek', 'ak', 'credential', 'akCertify', 'device', 'quote', 'signature', 'pcrs']);
  const cert = m.get('akCertify');
  if (!(cert instanceof Map)) return fail('evidence: "akCertify" must be a map { attest, signature }');
  const pcrsValue = m.get('pcrs');
  if (!(pcrsValue instanceof Map)) return fail('evidence: "pcrs" must be a map { index: value }');
  const pcrs: Record<number, Uint8Array> = {};
  for (const [k, v] of pcrsValue) {
    if (typeof k !== 'number' || !Number.isInteger(k) || k < 0 || k > 23) fail(`evidence: pcrs key ${String(k)} is not a PCR index 0–23`);
    if (!(v instanceof Uint8Array) || v.length !== 32) fail(`evidence: pcrs[${String(k)}] must be a 32-byte SHA-256 PCR value`);
    pcrs[k as number] = v as Uint8Array;
  }
  return {
    ek: field(m, 'ek'),
    ak: field(m, 'ak'),
    credential: field(m, 'credential'),
    akCertify: { attest: field(cert, 'attest'), signature: field(cert, 'signature') },
    device: field(m, 'device'),
    quote: field(m, 'quote'),
    signature: field(m, 'signature'),
    pcrs,
  };
}

export interface Tpm2VerifierOptions {
  /** Key of the activation HMAC; share it between masters that serve one onboarding (the master reads `<ca-dir>/tpm2-activation.key`, activation-key.ts). Default: random per process. */
  activationKey?: Uint8Array;
  /** DER certificates of the CAs that issue EK certificates; when given, the EK must be a certificate one of them issued. */
  ekRoots?: Uint8Array[];
  now?: () => Date;
}

export interface Tpm2Verifier extends AttestationVerifier {
  /**
   * Round one: the credential for the device's `{ ek, ak }` (CBOR, `encodeTpm2Identity` /
   * `tpmIdentity`), as tpm2-tools' credential file (`tpm2_activatecredential -i`), for the same
   * `nonce` the evidence is later verified with. Throws `Tpm2EvidenceError` / `Tpm2FormatError`
   * (its message is the reason to record) for a malformed identity, an AK that is not a restricted
   * fixedTPM signer, or — with `ekRoots` — an EK no trusted CA certified.
   */
  challenge(identity: Uint8Array, nonce: Uint8Array): Uint8Array;
}

export function createTpm2Verifier(opts: Tpm2VerifierOptions = {}): Tpm2Verifier {
  const activationKey = opts.activationKey ?? randomBytes(32);
  const roots = (opts.ekRoots ?? []).map((d) => new X509Certificate(d));
  const now = opts.now ?? (() => new Date());

  const trustEk = (ek: ParsedEk): boolean => {
    if (roots.length === 0) return false;
    const cert = ek.certificate ?? fail('ek: a certificate is required (EK roots are configured), a bare public key came');
    const issuer = roots.find((r) => cert.checkIssued(r) && cert.verify(r.publicKey));
    if (!issuer) fail(`ek: the EK certificate (issuer "${cert.issuer}") is not issued by a trusted EK CA`);
    const t = now().getTime();
    if (t < Date.parse(cert.validFrom) || t > Date.parse(cert.validTo)) fail('ek: the EK certificate is outside its validity period');
    return true;
  };
  const credentialFor = (nonce: Uint8Array, akName: Uint8Array, ekSpki: Uint8Array) =>
    new Uint8Array(createHmac('sha256', activationKey).update(concat(new TextEncoder().encode('tips tpm2 activation\0'), u16(nonce.length), nonce, akName, sha256(ekSpki))).digest());

  const run = (evidence: Uint8Array, ctx: AttestationContext): Record<string, unknown> => {
    const e = decodeTpm2Evidence(evidence);
    const ek = parseEk(e.ek);
    const ekAnchored = trustEk(ek);
    const ak = parseAk(e.ak);
    const akName = objectName(ak);

    // 1. AK ↔ EK: only the TPM holding the EK, with this AK loaded, could unwrap this credential.
    if (!equal(e.credential, credentialFor(ctx.nonce, akName, ek.spki))) fail('activation: the credential is not the one made for this EK, AK and nonce — the AK is not proven to live in this TPM');

    // 2. The quote: a TPM-generated structure, fresh, over exactly the policy's PCRs, signed by the AK.
    const quote = parseTpmsAttest(e.quote);
    if (quote.type !== TPM_ST_ATTEST_QUOTE || !quote.quote) return fail('quote: expected TPM_ST_ATTEST_QUOTE');
    if (!equal(quote.extraData, ctx.nonce)) fail('quote: extraData is not this onboarding\'s nonce (stale or replayed quote)');
    verifyTpmSignature(ak, e.quote, parseTpmtSignature(e.signature), 'quote');
    if (quote.quote.selection.length !== 1 || quote.quote.selection[0]!.hash !== TPM_ALG_SHA256) fail('quote: expected exactly one PCR bank, SHA-256');
    const selected = quote.quote.selection[0]!.pcrs;
    const reported = Object.keys(e.pcrs).map(Number).sort((a, b) => a - b);
    const wanted = ctx.policy.pcrs ? [...new Set(ctx.policy.pcrs)].sort((a, b) => a - b) : reported;
    if (selected.join(',') !== wanted.join(',')) fail(`quote: PCR selection [${selected.join(',')}] is not the policy's [${wanted.join(',')}]`);
    if (reported.join(',') !== selected.join(',')) fail(`pcrs: values reported for [${reported.join(',')}], the quote covers [${selected.join(',')}]`);
    const digest = sha256(...selected.map((i) => e.pcrs[i]!));
    if (!equal(digest, quote.quote.pcrDigest)) fail('pcrs: the reported PCR values do not hash to the quote\'s pcrDigest');
    if (ctx.policy.pcrDigest !== undefined && toHex(digest) !== ctx.policy.pcrDigest.toLowerCase()) fail(`pcrs: digest ${toHex(digest)} is not the policy's ${ctx.policy.pcrDigest.toLowerCase()} (a measured component changed)`);

    // 3. The voucher's device key is a fixedTPM key of the same TPM, certified by the AK.
    const device = parseTpm2bPublic(e.device);
    requireAttributes(device, 'device key', ['fixedTPM', 'fixedParent', 'sensitiveDataOrigin', 'sign']);
    let voucherKey: KeyObject;
    try {
      voucherKey = createPublicKey({ key: Buffer.from(ctx.deviceKeySpki), format: 'der', type: 'spki' });
    } catch {
      return fail('device key: the voucher\'s device key is not a SubjectPublicKeyInfo');
    }
    if (!equal(new Uint8Array(publicKeyOf(device).export({ type: 'spki', format: 'der' })), new Uint8Array(voucherKey.export({ type: 'spki', format: 'der' })))) fail('device key: the TPM key certified is not the key the voucher binds');
    const certify = parseTpmsAttest(e.akCertify.attest);
    if (certify.type !== TPM_ST_ATTEST_CERTIFY || !certify.certify) return fail('akCertify: expected TPM_ST_ATTEST_CERTIFY');
    if (!equal(certify.certify.name, objectName(device))) fail('akCertify: certifies another object than the device key');
    if (!equal(certify.qualifiedSigner, quote.qualifiedSigner)) fail('akCertify: signed by another key than the quote');
    verifyTpmSignature(ak, e.akCertify.attest, parseTpmtSignature(e.akCertify.signature), 'akCertify');

    return {
      verifier: 'tpm2',
      ek: toHex(sha256(ek.spki)),
      ekAnchored,
      ak: toHex(akName),
      pcrs: Object.fromEntries(selected.map((i) => [i, toHex(e.pcrs[i]!)])),
      pcrDigest: toHex(digest),
      resetCount: quote.clock.resetCount,
      restartCount: quote.clock.restartCount,
      firmwareVersion: quote.firmwareVersion.toString(16),
    };
  };

  return {
    name: 'tpm2',
    challenge(identity, nonce) {
      const m = asMap(identity, 'identity', ['ek', 'ak']);
      const ek = parseEk(field(m, 'ek'));
      trustEk(ek);
      const akName = objectName(parseAk(field(m, 'ak')));
      const { credentialBlob, encryptedSecret } = makeCredential(ek.key, akName, credentialFor(nonce, akName, ek.spki));
      return encodeToolsCredentialFile(credentialBlob, encryptedSecret);
    },
    async verify(evidence, ctx): Promise<AttestationResult> {
      try {
        return { ok: true, claims: run(evidence, ctx) };
      } catch (err) {
        if (err instanceof Tpm2EvidenceError || err instanceof Tpm2FormatError) return { ok: false, reason: err.message };
        throw err;
      }
    },
  };
}

function encodeToolsCredentialFile(credentialBlob: Uint8Array, encryptedSecret: Uint8Array): Uint8Array {
  return concat(u32(0xbadcc0de), u32(1), tpm2b(credentialBlob), tpm2b(encryptedSecret));
}

/** The verifier with a per-process activation key and no EK roots (see the module comment): for an app built without a CA dir (tests). */
export const tpm2Verifier: Tpm2Verifier = createTpm2Verifier();
