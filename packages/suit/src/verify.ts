/**
 * Verification as typed stages (S1, S3, S4, S12):
 *   decodeStage → authenticate → checkRollback → checkPolicy → VerifiedManifest.
 * Each stage accepts only the previous stage's type, and only checkPolicy can mint a
 * VerifiedManifest, the one thing installers (runManifest) accept.
 */
import * as nodeCrypto from 'node:crypto';
import { createHash, timingSafeEqual } from 'node:crypto';
import { bstrHead, wrapBstr } from './cbor.ts';
import { DIGEST_ALGORITHMS, MEMBER_NAMES, SUIT_PARAMETER_CLASS_IDENTIFIER, SUIT_PARAMETER_VENDOR_IDENTIFIER } from './constants.ts';
import { type CoseSingle, type CoseVerifyOptions, coseVerify, parseCoseSingle } from './cose.ts';
import { asSuitError, SuitError } from './errors.ts';
import type { CoseKey, TrustedKey } from './keys.ts';
import {
  type ComponentId,
  componentKey,
  decodeEnvelope,
  parseSeveredMember,
  type SeverableMember,
  type SuitCommandSequence,
  type SuitDigest,
  type SuitEnvelope,
  type SuitManifest,
} from './manifest.ts';
import { decodeCbor } from './cbor.ts';

declare const stage: unique symbol;
type Stage<T, S extends string> = T & { readonly [stage]: S };

export interface DecodedEnvelope {
  bytes: Uint8Array;
  envelope: SuitEnvelope;
}

export interface AuthenticatedFields extends DecodedEnvelope {
  manifest: SuitManifest;
  /** SUIT_Digest of the bstr-wrapped manifest, as authenticated. */
  manifestDigest: SuitDigest;
  /** The trusted key that verified the authentication block. */
  key: TrustedKey;
  /** Severable members now available (from the manifest or checked against their digests). */
  members: Map<number, SeverableMember>;
}
export type AuthenticatedEnvelope = Stage<AuthenticatedFields, 'authenticated'>;
export type FreshEnvelope = Stage<AuthenticatedFields, 'fresh'>;
export type VerifiedManifest = Stage<AuthenticatedFields, 'verified'>;

/** Hashes with a SUIT digest algorithm (COSE id). */
// crypto.hash (Node ≥ 20.12) skips the Hash object: several times faster on manifest-sized input.
const oneShotHash = (nodeCrypto as { hash?: (alg: string, data: Uint8Array, enc: 'buffer') => Buffer }).hash;

export function digestWith(alg: number, data: Uint8Array): Uint8Array {
  const name = DIGEST_ALGORITHMS.get(alg);
  if (!name) throw new SuitError('suit_digest_alg_unsupported', `expected digest alg -16 (SHA-256), -43 or -44, came ${alg}`);
  return oneShotHash ? oneShotHash(name, data, 'buffer') : createHash(name).update(data).digest();
}

/**
 * The bstr-wrapped form of bytes that were decoded out of a larger buffer: a view that includes
 * the CBOR head just before them when it is there (no copy), else a fresh head + content.
 */
export function wrappedView(content: Uint8Array): Uint8Array {
  const head = bstrHead(content.length);
  const start = content.byteOffset - head.length;
  if (start >= 0) {
    const before = new Uint8Array(content.buffer, start, head.length);
    let same = true;
    for (let i = 0; i < head.length; i++) if (before[i] !== head[i]) same = false;
    if (same) return new Uint8Array(content.buffer, start, head.length + content.length);
  }
  return wrapBstr(content);
}

export function digestMatches(d: SuitDigest, data: Uint8Array): boolean {
  const got = digestWith(d.alg, data);
  return got.length === d.bytes.length && timingSafeEqual(got, d.bytes);
}

/** Stage 1: strict decode. */
export function decodeStage(bytes: Uint8Array): DecodedEnvelope {
  return { bytes, envelope: decodeEnvelope(bytes) };
}

/** External AAD is empty in SUIT; algorithms are limited to those the MTI profiles name, plus ES384/512. */
export interface AuthenticateOptions {
  algorithms?: readonly number[];
}

/**
 * Stage 2: some authentication block verifies under a trusted key; the manifest digest matches the
 * bstr-wrapped manifest; each severed member carried in the envelope matches its digest.
 */
export function authenticate(decoded: DecodedEnvelope, trust: readonly TrustedKey[], options: AuthenticateOptions = {}): AuthenticatedEnvelope {
  const env = decoded.envelope;
  const auth = env.authentication;
  if (!auth || auth.blocks.length === 0) throw new SuitError('suit_unsigned', 'authentication-wrapper: expected at least one COSE authentication block, came none');
  let verifiedKey: CoseKey | undefined;
  let firstError: SuitError | undefined;
  const coseOptions: CoseVerifyOptions = { detachedPayload: auth.digestBytes };
  if (options.algorithms) coseOptions.algorithms = options.algorithms;
  for (const block of auth.blocks) {
    try {
      const cose: CoseSingle = parseCoseSingle(decodeCbor(block, { maxDepth: 16 }));
      const v = coseVerify(cose, trust, coseOptions);
      if (cose.payload !== null && Buffer.compare(Buffer.from(cose.payload), Buffer.from(auth.digestBytes)) !== 0) {
        throw new SuitError('suit_digest_mismatch', 'authentication block: expected its payload to be the manifest digest, came other bytes');
      }
      verifiedKey = v.key;
      break;
    } catch (e) {
      firstError ??= asSuitError(e);
    }
  }
  if (!verifiedKey) throw firstError ?? new SuitError('suit_signature_invalid', 'no authentication block verified');
  if (!digestMatches(auth.digest, wrappedView(env.manifestBytes))) {
    throw new SuitError('suit_digest_mismatch', 'manifest: expected its SHA digest to equal the signed digest, came a different manifest');
  }
  const members = new Map<number, SeverableMember>();
  for (const [k, m] of env.manifest.severable) {
    if (!m.severed) {
      members.set(k, m);
      continue;
    }
    const bytes = env.severed.get(k);
    if (!bytes) continue;
    if (!digestMatches(m.digest, wrappedView(bytes))) {
      throw new SuitError('suit_severed_mismatch', `${MEMBER_NAMES[k] ?? k}: expected the severed member to match its digest in the manifest, came different bytes`);
    }
    members.set(k, parseSeveredMember(k, bytes));
  }
  // An explicit literal, not a spread of `decoded`: spreading costs microseconds per envelope.
  const out: AuthenticatedFields = { bytes: decoded.bytes, envelope: env, manifest: env.manifest, manifestDigest: auth.digest, key: verifiedKey as TrustedKey, members };
  return out as AuthenticatedEnvelope;
}

/** Where the device keeps the last accepted sequence number per component (S4). */
export interface SequenceStore {
  get(component: string): number | bigint | undefined | Promise<number | bigint | undefined>;
}

/** Stage 3: the sequence number is strictly greater than the stored one for every component. */
export function checkRollbackWith(auth: AuthenticatedEnvelope, lookup: ((component: string) => number | bigint | undefined) | { currentSeq: number | bigint | undefined }): FreshEnvelope {
  const seq = BigInt(auth.manifest.sequenceNumber);
  if (typeof lookup !== 'function') {
    // One number for the whole device: no per-component lookup needed.
    const stored = lookup.currentSeq;
    if (stored !== undefined && seq <= BigInt(stored)) {
      throw new SuitError('suit_rollback', `manifest-sequence-number: expected greater than ${stored}, came ${seq}`);
    }
    return auth as unknown as FreshEnvelope;
  }
  for (const c of manifestComponents(auth.manifest)) {
    const stored = lookup(componentKey(c));
    if (stored !== undefined && seq <= BigInt(stored)) {
      throw new SuitError('suit_rollback', `manifest-sequence-number: expected greater than ${stored} for component ${componentKey(c)}, came ${seq}`);
    }
  }
  return auth as unknown as FreshEnvelope;
}

export async function checkRollback(auth: AuthenticatedEnvelope, store: SequenceStore | { currentSeq: number | bigint }): Promise<FreshEnvelope> {
  if ('currentSeq' in store) return checkRollbackWith(auth, { currentSeq: store.currentSeq });
  const values = new Map<string, number | bigint | undefined>();
  for (const c of manifestComponents(auth.manifest)) values.set(componentKey(c), await store.get(componentKey(c)));
  return checkRollbackWith(auth, (k) => values.get(k));
}

/** What this device is (S3): compared with the manifest's vendor/class identifiers. */
export interface DevicePolicy {
  vendorId?: Uint8Array;
  classId?: Uint8Array;
  /** Component identifiers this device lets manifests touch (componentKey hex or the id itself). */
  components?: readonly (string | ComponentId)[];
}

/** Every component the manifest names: common.components and the manifest-component-id. */
export function manifestComponents(m: SuitManifest): ComponentId[] {
  return m.common.components;
}

function collect(seq: SuitCommandSequence | undefined, param: number, out: Uint8Array[]): void {
  if (!seq) return;
  for (const c of seq.commands) {
    const a = c.arg;
    if (a.kind === 'parameters') {
      const v = a.parameters.get(param);
      if (v instanceof Uint8Array) out.push(v);
    } else if (a.kind === 'try-each') for (const o of a.options) collect(o, param, out);
    else if (a.kind === 'sequence') collect(a.sequence, param, out);
  }
}

/** Every value the manifest sets for a parameter, in any available sequence. */
export function parameterValues(auth: AuthenticatedFields, param: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  collect(auth.manifest.common.sharedSequence, param, out);
  for (const s of auth.manifest.sequences.values()) collect(s, param, out);
  for (const m of auth.members.values()) if (!m.severed && m.sequence) collect(m.sequence, param, out);
  return out;
}

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

/** Stage 4: vendor and class identifiers name this device; every component is allowed. */
export function checkPolicy(fresh: FreshEnvelope, device: DevicePolicy): VerifiedManifest {
  const checks: [number, Uint8Array | undefined, 'suit_vendor_mismatch' | 'suit_class_mismatch', string][] = [
    [SUIT_PARAMETER_VENDOR_IDENTIFIER, device.vendorId, 'suit_vendor_mismatch', 'vendor-identifier'],
    [SUIT_PARAMETER_CLASS_IDENTIFIER, device.classId, 'suit_class_mismatch', 'class-identifier'],
  ];
  for (const [param, want, code, name] of checks) {
    if (!want) continue;
    const values = parameterValues(fresh, param);
    if (values.length === 0) throw new SuitError(code, `${name}: expected ${hex(want)}, came a manifest that names none`);
    for (const v of values) {
      if (v.length !== want.length || !timingSafeEqual(v, want)) throw new SuitError(code, `${name}: expected ${hex(want)}, came ${hex(v)}`);
    }
  }
  if (device.components) {
    const allowed = new Set(device.components.map((c) => (typeof c === 'string' ? c : componentKey(c))));
    for (const c of manifestComponents(fresh.manifest)) {
      if (!allowed.has(componentKey(c))) throw new SuitError('suit_component_not_allowed', `components: expected one of ${[...allowed].join(', ')}, came ${componentKey(c)}`);
    }
  }
  return fresh as unknown as VerifiedManifest;
}

export interface VerifyOptions {
  trust: readonly TrustedKey[];
  /** Per-component store of accepted sequence numbers, or one current number for all. */
  sequenceStore?: SequenceStore;
  currentSeq?: number | bigint;
  device?: DevicePolicy;
  algorithms?: readonly number[];
}

/** All stages in order. Throws SuitError with a stable code. */
export async function verifyEnvelope(bytes: Uint8Array, options: VerifyOptions): Promise<VerifiedManifest> {
  const auth = authenticate(decodeStage(bytes), options.trust, options);
  const fresh = options.sequenceStore
    ? await checkRollback(auth, options.sequenceStore)
    : checkRollbackWith(auth, { currentSeq: options.currentSeq });
  return checkPolicy(fresh, options.device ?? {});
}

/** Synchronous variant for a known current sequence number (no async store). */
export function verifyEnvelopeSync(bytes: Uint8Array, options: Omit<VerifyOptions, 'sequenceStore'>): VerifiedManifest {
  const auth = authenticate(decodeStage(bytes), options.trust, options);
  return checkPolicy(
    checkRollbackWith(auth, { currentSeq: options.currentSeq }),
    options.device ?? {},
  );
}

export type VerifyResult = { ok: true; value: VerifiedManifest } | { ok: false; error: SuitError };

/** verifyEnvelope that never throws: any failure, however odd the input, becomes a SuitError. */
export async function verifyEnvelopeResult(bytes: Uint8Array, options: VerifyOptions): Promise<VerifyResult> {
  try {
    return { ok: true, value: await verifyEnvelope(bytes, options) };
  } catch (e) {
    return { ok: false, error: asSuitError(e) };
  }
}
