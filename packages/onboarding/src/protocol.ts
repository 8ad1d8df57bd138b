/**
 * The signed messages of rendezvous (FDO TO0/TO1) and of the device's first contact with its owner
 * (TO2), reduced to what TIPS needs (docs/onboarding-vouchers.md, "Rendezvous and TO2"):
 *
 * - `to1d`: the owner's signed redirect — COSE_Sign1 by the voucher's current owner key over
 *   `[context "tips-to1d", guid, [+ address], expiresAt]`. The rendezvous server checks it against
 *   the voucher it is registered with; the device checks it once it holds the voucher (TO2).
 * - proofs: COSE_Sign1 over `[context, guid, nonce…]` by the device key (TO1, TO2) or by the
 *   owner key (TO2: the owner proves it is the owner before the device says anything more).
 *
 * The context string is signed, so a signature made for one step can never be replayed at another.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { type CborValue, coseSign1Sign, coseSign1Verify, decodeCbor, encodeCbor, encodeCoseSingle, sigStructure, SuitError } from '@tips/suit';
import { type FdoPublicKey, toFdoPublicKey } from './codec.ts';
import { COSE_ES256, COSE_ES384, GUID_BYTES, PK_TYPE_SECP384R1 } from './constants.ts';

export type ProofContext = 'tips-to1d' | 'tips-to1-device' | 'tips-to2-owner' | 'tips-to2-device' | 'tips-to2-setup';

export type ProofErrorCode = 'proof_malformed' | 'proof_invalid' | 'proof_expired';

export class ProofError extends Error {
  constructor(
    readonly code: ProofErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ProofError';
  }
}

/** Nonces are 16 to 64 bytes (FDO uses 16). */
export const MIN_NONCE = 16;
export const MAX_NONCE = 64;

const algFor = (k: FdoPublicKey) => (k.type === PK_TYPE_SECP384R1 ? COSE_ES384 : COSE_ES256);

/**
 * A key that signs where it lives (a TPM): `sign` gets the COSE Sig_structure bytes and returns
 * the ECDSA signature over their SHA-256 as r‖s (COSE's form), `publicKey` is its public half.
 */
export interface ProofSigner {
  publicKey: KeyObject;
  sign(toBeSigned: Uint8Array): Uint8Array;
}

/** Signs `[context, ...fields]` with a signer whose key never leaves it (ES256 only: a TPM's P-256 key). */
export function signProofWith(signer: ProofSigner, context: ProofContext, fields: CborValue[]): Uint8Array {
  const pub = toFdoPublicKey(signer.publicKey);
  if (algFor(pub) !== COSE_ES256) throw new ProofError('proof_malformed', 'a signer outside the process must hold a P-256 key');
  const protectedBytes = encodeCbor(new Map([[1, COSE_ES256]]));
  const payload = encodeCbor([context, ...fields]);
  const tag = signer.sign(sigStructure('Signature1', protectedBytes, new Uint8Array(0), payload));
  return encodeCoseSingle({ type: 'sign1', tagged: true, protectedBytes, protectedHeaders: new Map([[1, COSE_ES256]]), unprotectedHeaders: new Map(), payload, tag });
}

/** Signs `[context, ...fields]` with `key` (a P-256 or P-384 private key). */
export function signProof(key: KeyObject, context: ProofContext, fields: CborValue[]): Uint8Array {
  const pub = toFdoPublicKey(key);
  return coseSign1Sign({ protectedHeaders: new Map([[1, algFor(pub)]]), payload: encodeCbor([context, ...fields]) }, { privateKey: key, publicKey: pub.key });
}

/**
 * Verifies a proof made by `signer` for `context`; returns the signed fields (after the context).
 * Any other signer, context or a changed byte is `proof_invalid`.
 */
export function verifyProof(bytes: Uint8Array, signer: KeyObject | FdoPublicKey, context: ProofContext): CborValue[] {
  const key = 'body' in signer ? signer : toFdoPublicKey(signer);
  let payload: Uint8Array;
  try {
    payload = coseSign1Verify(bytes, [{ publicKey: key.key }], { algorithms: [algFor(key)] }).payload;
  } catch (err) {
    if (!(err instanceof SuitError)) throw err;
    const invalid = err.code === 'suit_signature_invalid' || err.code === 'suit_untrusted_key' || err.code === 'cose_alg_unsupported';
    throw new ProofError(invalid ? 'proof_invalid' : 'proof_malformed', `${context}: ${invalid ? 'not signed by the expected key' : err.message}`);
  }
  let v: CborValue;
  try {
    v = decodeCbor(payload, { maxDepth: 8 });
  } catch (err) {
    throw new ProofError('proof_malformed', `${context}: ${(err as Error).message}`);
  }
  if (!Array.isArray(v) || v[0] !== context) throw new ProofError('proof_invalid', `expected a ${context} proof, came ${Array.isArray(v) && typeof v[0] === 'string' ? `a ${v[0].slice(0, 32)} one` : 'something else'}`);
  return v.slice(1);
}

export function nonceFrom(v: CborValue | undefined, what: string): Uint8Array {
  if (!(v instanceof Uint8Array) || v.length < MIN_NONCE || v.length > MAX_NONCE) throw new ProofError('proof_malformed', `${what}: expected a nonce of ${MIN_NONCE} to ${MAX_NONCE} bytes`);
  return v;
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

/** Hex SHA-256 of a nonce: what a server stores (it never needs the nonce back, only to recognise it). */
export function nonceDigest(nonce: Uint8Array): string {
  return createHash('sha256').update(nonce).digest('hex');
}

// ---------------------------------------------------------------------------- to1d

export interface To1d {
  guid: Uint8Array;
  /** Where the owner's master takes the device's TO2 (base URLs). */
  addresses: string[];
  /** Seconds since the epoch; after it rendezvous forgets the registration. */
  expiresAt: number;
}

export function signTo1d(ownerKey: KeyObject, d: To1d): Uint8Array {
  return signProof(ownerKey, 'tips-to1d', [d.guid, d.addresses, d.expiresAt]);
}

/** Verifies a to1d against the owner key the voucher names; `now` in seconds since the epoch. */
export function verifyTo1d(bytes: Uint8Array, ownerKey: KeyObject | FdoPublicKey, now: number): To1d {
  const [guid, addresses, expiresAt] = verifyProof(bytes, ownerKey, 'tips-to1d');
  if (!(guid instanceof Uint8Array) || guid.length !== GUID_BYTES) throw new ProofError('proof_malformed', 'to1d: expected a 16-byte GUID');
  if (!Array.isArray(addresses) || addresses.length === 0 || addresses.length > 8 || !addresses.every((a) => typeof a === 'string' && /^https?:\/\/[^\s]{1,2000}$/.test(a))) {
    throw new ProofError('proof_malformed', 'to1d: expected 1 to 8 http(s) addresses');
  }
  if (typeof expiresAt !== 'number' || !Number.isSafeInteger(expiresAt)) throw new ProofError('proof_malformed', 'to1d: expected expiresAt in seconds');
  if (expiresAt <= now) throw new ProofError('proof_expired', `to1d: expired at ${new Date(expiresAt * 1000).toISOString()}`);
  return { guid, addresses: addresses as string[], expiresAt };
}
