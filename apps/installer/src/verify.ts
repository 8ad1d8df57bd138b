/**
 * Verifies the Glaze's SUIT manifest with @tips/suit before a byte is written (S12, T12):
 * decode → authenticate (a key the owner registered) → sequence ≥ minSequence → vendor/class →
 * the manifest's image digest and size are the pinned Glaze's. Each failure becomes its A4 code.
 */
import {
  authenticate,
  checkPolicy,
  checkRollbackWith,
  type DevicePolicy,
  decodeCbor,
  decodeStage,
  importKey,
  parameterValues,
  SHA256,
  SUIT_PARAMETER_IMAGE_DIGEST,
  SUIT_PARAMETER_IMAGE_SIZE,
  SuitError,
  type SuitCommandSequence,
  type TrustedKey,
  uuidToBytes,
  type VerifiedManifest,
} from '@tips/suit';
import { InstallerError } from './errors.ts';
import type { Work } from './work.ts';

export interface VerifiedGlaze {
  manifest: VerifiedManifest;
  sequence: number;
  /** Which registered key signed it. */
  keyId: string;
}

function trustList(work: Work): TrustedKey[] {
  const keys: TrustedKey[] = [];
  for (const k of work.trustedKeys) {
    try {
      keys.push({ ...importKey(k.publicKeyPem), name: k.id });
    } catch {
      // A key the installer cannot read cannot vouch for anything; the others still can.
    }
  }
  return keys;
}

function idBytes(v: string, field: string): Uint8Array {
  try {
    return uuidToBytes(v);
  } catch {
    if (/^[0-9a-f]+$/i.test(v) && v.length % 2 === 0) return new Uint8Array(Buffer.from(v, 'hex'));
    throw new InstallerError('work_refused', `work.${field}: expected a UUID or hex, came "${v}"`);
  }
}

function asCode(e: unknown, stage: 'authenticate' | 'policy'): InstallerError {
  if (e instanceof InstallerError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  if (e instanceof SuitError) {
    // No registered key verifies the signature over the manifest digest: signed by a key the owner
    // never registered (without a kid the two cannot be told apart from a mangled signature).
    if (stage === 'authenticate' && (e.code === 'suit_untrusted_key' || e.code === 'suit_signature_invalid')) {
      return new InstallerError('suit_unknown_key', `no key the owner registered verifies the manifest's signature: ${msg}`);
    }
    if (e.code === 'suit_rollback' || e.code === 'suit_vendor_mismatch' || e.code === 'suit_class_mismatch') return new InstallerError(e.code, msg);
  }
  // Anything else while authenticating (bad structure, no signature, a manifest that is not the
  // one the signature covers) means the manifest is not authentic.
  return new InstallerError(stage === 'authenticate' ? 'suit_signature_invalid' : 'suit_digest_mismatch', msg);
}

/** Throws InstallerError with the refusal's A4 code; only a fully verified manifest comes back. */
export function verifyGlazeManifest(work: Work): VerifiedGlaze {
  const bytes = new Uint8Array(Buffer.from(work.manifest, 'base64'));
  let auth: ReturnType<typeof authenticate>;
  try {
    auth = authenticate(decodeStage(bytes), trustList(work));
  } catch (e) {
    throw asCode(e, 'authenticate');
  }
  let manifest: VerifiedManifest;
  try {
    // The manifest's sequence must be ≥ the last one Phase 1 installed (reinstalling it is fine):
    // suit's rollback stage refuses ≤ stored, so it is given minSequence − 1.
    const fresh = checkRollbackWith(auth, { currentSeq: work.minSequence > 0 ? BigInt(work.minSequence) - 1n : undefined });
    const device: DevicePolicy = {};
    if (work.vendorId) device.vendorId = idBytes(work.vendorId, 'vendorId');
    if (work.classId) device.classId = idBytes(work.classId, 'classId');
    manifest = checkPolicy(fresh, device);
  } catch (e) {
    throw asCode(e, 'policy');
  }
  const digests = parameterValues(manifest, SUIT_PARAMETER_IMAGE_DIGEST);
  if (digests.length === 0) throw new InstallerError('suit_digest_mismatch', 'image-digest: expected the Glaze SHA-256, came a manifest with none');
  for (const d of digests) {
    let ok = false;
    try {
      const v = decodeCbor(d);
      ok = Array.isArray(v) && v[0] === SHA256 && v[1] instanceof Uint8Array && Buffer.from(v[1]).toString('hex') === work.glaze.sha256;
    } catch {
      ok = false;
    }
    if (!ok) throw new InstallerError('suit_digest_mismatch', `image-digest: expected SHA-256 ${work.glaze.sha256} (the job's Glaze), came another digest`);
  }
  const sizeValues = collectSizes(manifest);
  if (sizeValues.length === 0) throw new InstallerError('suit_size_mismatch', `image-size: expected ${work.glaze.size}, came a manifest with none`);
  for (const s of sizeValues) {
    if (BigInt(s) !== BigInt(work.glaze.size)) throw new InstallerError('suit_size_mismatch', `image-size: expected ${work.glaze.size} (the job's Glaze), came ${s}`);
  }
  const seq = BigInt(manifest.manifest.sequenceNumber);
  return { manifest, sequence: Number(seq), keyId: manifest.key.name ?? '' };
}

/** image-size is an integer parameter; parameterValues only collects byte strings. */
function collectSizes(m: VerifiedManifest): (number | bigint)[] {
  const out: (number | bigint)[] = [];
  const visit = (seq: SuitCommandSequence | undefined): void => {
    if (!seq) return;
    for (const { arg } of seq.commands) {
      if (arg.kind === 'parameters') {
        const v = arg.parameters.get(SUIT_PARAMETER_IMAGE_SIZE);
        if (typeof v === 'number' || typeof v === 'bigint') out.push(v);
      } else if (arg.kind === 'try-each') for (const o of arg.options) visit(o);
      else if (arg.kind === 'sequence') visit(arg.sequence);
    }
  };
  visit(m.manifest.common.sharedSequence);
  for (const s of m.manifest.sequences.values()) visit(s);
  for (const mem of m.members.values()) if (!mem.severed && mem.sequence) visit(mem.sequence);
  return out;
}
