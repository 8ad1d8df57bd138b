/**
 * TPM 2.0 wire structures the tpm2 verifier reads (TPM 2.0 Library, Part 2 "Structures"): strict,
 * pure decoders over bytes. Every read is bounds-checked, every tag is one this verifier knows, and
 * nothing may trail the structure; anything else is a `Tpm2FormatError` naming what was expected.
 */

/** Part 2 §6.2 TPM_GENERATED_VALUE: the TPM puts it in every TPMS_ATTEST it signs itself. */
export const TPM_GENERATED_VALUE = 0xff544347;
/** Part 2 §6.9 TPM_ST */
export const TPM_ST_ATTEST_CERTIFY = 0x8017;
export const TPM_ST_ATTEST_QUOTE = 0x8018;
/** Part 2 §6.3 TPM_ALG_ID */
export const TPM_ALG_RSA = 0x0001;
export const TPM_ALG_SHA256 = 0x000b;
export const TPM_ALG_NULL = 0x0010;
export const TPM_ALG_RSASSA = 0x0014;
export const TPM_ALG_RSAPSS = 0x0016;
export const TPM_ALG_ECDSA = 0x0018;
export const TPM_ALG_ECDAA = 0x001a;
export const TPM_ALG_ECC = 0x0023;
/** Part 2 §6.4 TPM_ECC_CURVE */
export const TPM_ECC_NIST_P256 = 0x0003;
/** Part 2 §8.3 TPMA_OBJECT bits */
export const TPMA_OBJECT = {
  fixedTPM: 1 << 1,
  fixedParent: 1 << 4,
  sensitiveDataOrigin: 1 << 5,
  userWithAuth: 1 << 6,
  restricted: 1 << 16,
  decrypt: 1 << 17,
  sign: 1 << 18,
} as const;

export type Tpm2FormatErrorCode = 'truncated' | 'trailing_bytes' | 'bad_magic' | 'unexpected_type' | 'unsupported_algorithm' | 'bad_size';

export class Tpm2FormatError extends Error {
  constructor(
    readonly code: Tpm2FormatErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'Tpm2FormatError';
  }
}

const hex = (n: number, w = 4) => `0x${n.toString(16).padStart(w, '0')}`;

/** Big-endian cursor; `what` names the structure in error messages. */
class Reader {
  private at = 0;
  constructor(
    private readonly bytes: Uint8Array,
    private readonly what: string,
  ) {}
  private need(n: number, field: string): void {
    if (this.at + n > this.bytes.length) throw new Tpm2FormatError('truncated', `${this.what}: ${field} needs ${n} byte(s) at offset ${this.at}, only ${this.bytes.length - this.at} left`);
  }
  u8(field: string): number {
    this.need(1, field);
    return this.bytes[this.at++]!;
  }
  u16(field: string): number {
    this.need(2, field);
    const v = (this.bytes[this.at]! << 8) | this.bytes[this.at + 1]!;
    this.at += 2;
    return v;
  }
  u32(field: string): number {
    this.need(4, field);
    const v = ((this.bytes[this.at]! << 24) | (this.bytes[this.at + 1]! << 16) | (this.bytes[this.at + 2]! << 8) | this.bytes[this.at + 3]!) >>> 0;
    this.at += 4;
    return v;
  }
  u64(field: string): bigint {
    const hi = BigInt(this.u32(field));
    return (hi << 32n) | BigInt(this.u32(field));
  }
  raw(n: number, field: string): Uint8Array {
    this.need(n, field);
    const v = this.bytes.slice(this.at, this.at + n);
    this.at += n;
    return v;
  }
  /** TPM2B_*: a u16 size then that many bytes; `max` is the structure's largest legal size. */
  sized(field: string, max: number): Uint8Array {
    const n = this.u16(`${field}.size`);
    if (n > max) throw new Tpm2FormatError('bad_size', `${this.what}: ${field} is ${n} bytes, at most ${max} allowed`);
    return this.raw(n, field);
  }
  end(): void {
    if (this.at !== this.bytes.length) throw new Tpm2FormatError('trailing_bytes', `${this.what}: ${this.bytes.length - this.at} byte(s) after the end of the structure`);
  }
}

export type Tpm2PublicKey =
  | { type: 'ecc'; curve: 'P-256'; x: Uint8Array; y: Uint8Array }
  | { type: 'rsa'; modulus: Uint8Array; exponent: number };

export interface Tpm2Public {
  nameAlg: number;
  attributes: number;
  authPolicy: Uint8Array;
  /** Signing scheme from the parameters (TPM_ALG_NULL when the key leaves it to the command). */
  scheme: { alg: number; hash: number };
  key: Tpm2PublicKey;
  /** The TPMT_PUBLIC bytes exactly as the TPM marshalled them: the object's Name hashes these. */
  area: Uint8Array;
}

function symDefObject(r: Reader): void {
  const alg = r.u16('symmetric.algorithm');
  if (alg !== TPM_ALG_NULL) {
    r.u16('symmetric.keyBits');
    r.u16('symmetric.mode');
  }
}

function scheme(r: Reader, field: string): { alg: number; hash: number } {
  const alg = r.u16(`${field}.scheme`);
  if (alg === TPM_ALG_NULL) return { alg, hash: TPM_ALG_NULL };
  if (alg === TPM_ALG_ECDAA) throw new Tpm2FormatError('unsupported_algorithm', `${field}: ECDAA is not supported`);
  return { alg, hash: r.u16(`${field}.hashAlg`) };
}

/** TPMT_PUBLIC (Part 2 §12.2.4); RSA and ECC P-256 only, which is what TPMs make for EKs and AKs. */
export function parseTpmtPublic(area: Uint8Array): Tpm2Public {
  const r = new Reader(area, 'TPMT_PUBLIC');
  const type = r.u16('type');
  const nameAlg = r.u16('nameAlg');
  if (nameAlg !== TPM_ALG_SHA256) throw new Tpm2FormatError('unsupported_algorithm', `TPMT_PUBLIC: nameAlg ${hex(nameAlg)}, expected SHA-256 (0x000b)`);
  const attributes = r.u32('objectAttributes');
  const authPolicy = r.sized('authPolicy', 64);
  let key: Tpm2PublicKey;
  let sch: { alg: number; hash: number };
  if (type === TPM_ALG_ECC) {
    symDefObject(r);
    sch = scheme(r, 'parameters');
    const curve = r.u16('curveID');
    if (curve !== TPM_ECC_NIST_P256) throw new Tpm2FormatError('unsupported_algorithm', `TPMT_PUBLIC: curve ${hex(curve)}, expected NIST P-256 (0x0003)`);
    const kdf = r.u16('kdf.scheme');
    if (kdf !== TPM_ALG_NULL) r.u16('kdf.hashAlg');
    const x = r.sized('unique.x', 32);
    const y = r.sized('unique.y', 32);
    if (x.length !== 32 || y.length !== 32) throw new Tpm2FormatError('bad_size', `TPMT_PUBLIC: P-256 point coordinates are ${x.length} and ${y.length} bytes, expected 32`);
    key = { type: 'ecc', curve: 'P-256', x, y };
  } else if (type === TPM_ALG_RSA) {
    symDefObject(r);
    sch = scheme(r, 'parameters');
    const bits = r.u16('keyBits');
    const exponent = r.u32('exponent');
    const modulus = r.sized('unique.rsa', 512);
    if (bits !== 2048 && bits !== 3072 && bits !== 4096) throw new Tpm2FormatError('unsupported_algorithm', `TPMT_PUBLIC: RSA keyBits ${bits}, expected 2048, 3072 or 4096`);
    if (modulus.length * 8 !== bits) throw new Tpm2FormatError('bad_size', `TPMT_PUBLIC: RSA modulus is ${modulus.length} bytes for keyBits ${bits}`);
    key = { type: 'rsa', modulus, exponent: exponent === 0 ? 65537 : exponent };
  } else {
    throw new Tpm2FormatError('unsupported_algorithm', `TPMT_PUBLIC: type ${hex(type)}, expected RSA (0x0001) or ECC (0x0023)`);
  }
  r.end();
  return { nameAlg, attributes, authPolicy, scheme: sch, key, area: area.slice() };
}

/** TPM2B_PUBLIC, as `tpm2_readpublic -f tss` / `tpm2_createak -f tss` write it. */
export function parseTpm2bPublic(bytes: Uint8Array): Tpm2Public {
  const r = new Reader(bytes, 'TPM2B_PUBLIC');
  const area = r.sized('publicArea', 1024);
  r.end();
  return parseTpmtPublic(area);
}

export interface PcrSelection {
  hash: number;
  /** PCR indices selected, ascending. */
  pcrs: number[];
}

export interface Tpm2Attest {
  type: number;
  qualifiedSigner: Uint8Array;
  extraData: Uint8Array;
  clock: { clock: bigint; resetCount: number; restartCount: number; safe: boolean };
  firmwareVersion: bigint;
  quote?: { selection: PcrSelection[]; pcrDigest: Uint8Array };
  certify?: { name: Uint8Array; qualifiedName: Uint8Array };
}

/** TPMS_ATTEST (Part 2 §10.12.12) of a quote or a certification; other attestation types are refused. */
export function parseTpmsAttest(bytes: Uint8Array): Tpm2Attest {
  const r = new Reader(bytes, 'TPMS_ATTEST');
  const magic = r.u32('magic');
  if (magic !== TPM_GENERATED_VALUE) throw new Tpm2FormatError('bad_magic', `TPMS_ATTEST: magic ${hex(magic, 8)}, expected TPM_GENERATED_VALUE 0xff544347`);
  const type = r.u16('type');
  const qualifiedSigner = r.sized('qualifiedSigner', 68);
  const extraData = r.sized('extraData', 64);
  const clock = { clock: r.u64('clockInfo.clock'), resetCount: r.u32('clockInfo.resetCount'), restartCount: r.u32('clockInfo.restartCount'), safe: false };
  const safe = r.u8('clockInfo.safe');
  if (safe > 1) throw new Tpm2FormatError('bad_size', `TPMS_ATTEST: clockInfo.safe is ${safe}, expected 0 or 1`);
  clock.safe = safe === 1;
  const firmwareVersion = r.u64('firmwareVersion');
  const out: Tpm2Attest = { type, qualifiedSigner, extraData, clock, firmwareVersion };
  if (type === TPM_ST_ATTEST_QUOTE) {
    const count = r.u32('pcrSelect.count');
    if (count > 16) throw new Tpm2FormatError('bad_size', `TPMS_ATTEST: ${count} PCR banks selected, at most 16`);
    const selection: PcrSelection[] = [];
    for (let i = 0; i < count; i++) {
      const hash = r.u16(`pcrSelections[${i}].hash`);
      const size = r.u8(`pcrSelections[${i}].sizeofSelect`);
      if (size < 3 || size > 4) throw new Tpm2FormatError('bad_size', `TPMS_ATTEST: sizeofSelect ${size}, expected 3 or 4`);
      const bitmap = r.raw(size, `pcrSelections[${i}].pcrSelect`);
      const pcrs: number[] = [];
      for (let b = 0; b < size * 8; b++) if (bitmap[b >> 3]! & (1 << (b & 7))) pcrs.push(b);
      selection.push({ hash, pcrs });
    }
    out.quote = { selection, pcrDigest: r.sized('pcrDigest', 64) };
  } else if (type === TPM_ST_ATTEST_CERTIFY) {
    out.certify = { name: r.sized('name', 68), qualifiedName: r.sized('qualifiedName', 68) };
  } else {
    throw new Tpm2FormatError('unexpected_type', `TPMS_ATTEST: type ${hex(type)}, expected ATTEST_QUOTE (0x8018) or ATTEST_CERTIFY (0x8017)`);
  }
  r.end();
  return out;
}

export type Tpm2Signature = { alg: 'ecdsa'; hash: number; r: Uint8Array; s: Uint8Array } | { alg: 'rsassa' | 'rsapss'; hash: number; sig: Uint8Array };

/** TPMT_SIGNATURE (Part 2 §11.3.4): ECDSA, RSASSA-PKCS1-v1_5 or RSA-PSS. */
export function parseTpmtSignature(bytes: Uint8Array): Tpm2Signature {
  const r = new Reader(bytes, 'TPMT_SIGNATURE');
  const alg = r.u16('sigAlg');
  let out: Tpm2Signature;
  if (alg === TPM_ALG_ECDSA) {
    const hash = r.u16('hash');
    out = { alg: 'ecdsa', hash, r: r.sized('signatureR', 66), s: r.sized('signatureS', 66) };
  } else if (alg === TPM_ALG_RSASSA || alg === TPM_ALG_RSAPSS) {
    const hash = r.u16('hash');
    out = { alg: alg === TPM_ALG_RSASSA ? 'rsassa' : 'rsapss', hash, sig: r.sized('sig', 512) };
  } else {
    throw new Tpm2FormatError('unsupported_algorithm', `TPMT_SIGNATURE: sigAlg ${hex(alg)}, expected ECDSA (0x0018), RSASSA (0x0014) or RSAPSS (0x0016)`);
  }
  r.end();
  return out;
}
