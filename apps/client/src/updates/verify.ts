/**
 * S4 S5: a Phase 2 item is acted on only after @tips/suit's typed stages pass — signature by an
 * operator of the trust list, sequence number above the stored one for every component, the
 * metal's vendor and class — and the manifest's image digest is the SHA-256 the item announces.
 * Only then is a byte downloaded.
 */
import { asSuitError, componentKey, decodeEnvelope, manifestComponents, SuitError, uuidToBytes, type VerifiedManifest, verifyEnvelope, verifyGlazeBinding } from '@tips/suit';
import { operatorKeys, type TrustList } from '@tips/trust';
import type { WorkItem } from '../master/metal-api.ts';

export interface Verified {
  manifest: VerifiedManifest;
  sequence: number;
  components: string[];
}

export type VerifyOutcome = { ok: true; value: Verified } | { ok: false; reason: string; detail: string; sequence: number | null };

/** The reason codes of the Phase 1 report (contract A4), where one fits; the SUIT code otherwise. */
export function reasonOf(e: SuitError): string {
  switch (e.code) {
    case 'suit_untrusted_key':
      return 'suit_unknown_key';
    case 'glaze_digest_mismatch':
      return 'suit_digest_mismatch';
    default:
      return e.code;
  }
}

export async function verifyItem(item: WorkItem, trust: TrustList, device: { vendorId: string | null; classId: string | null }, sequences: Record<string, number>): Promise<VerifyOutcome> {
  if (typeof item.manifest !== 'string' || !/^[A-Za-z0-9+/=_-]+$/.test(item.manifest)) return { ok: false, reason: 'cbor_truncated', detail: 'manifest: expected base64', sequence: null };
  const bytes = new Uint8Array(Buffer.from(item.manifest, 'base64'));
  try {
    const manifest = await verifyEnvelope(bytes, {
      trust: operatorKeys(trust),
      sequenceStore: { get: (c) => sequences[c] },
      device: { ...(device.vendorId ? { vendorId: uuidToBytes(device.vendorId) } : {}), ...(device.classId ? { classId: uuidToBytes(device.classId) } : {}) },
    });
    if (!/^[0-9a-f]{64}$/.test(item.glaze.sha256)) throw new SuitError('suit_bad_value', 'glaze.sha256: expected 64 lower-case hex characters');
    verifyGlazeBinding(bytes, item.glaze.sha256);
    const sequence = Number(manifest.manifest.sequenceNumber);
    return { ok: true, value: { manifest, sequence, components: manifestComponents(manifest.manifest).map(componentKey) } };
  } catch (e) {
    const se = asSuitError(e);
    let sequence: number | null = null;
    try {
      sequence = Number(decodeEnvelope(bytes).manifest.sequenceNumber);
    } catch {
      sequence = null;
    }
    return { ok: false, reason: reasonOf(se), detail: se.message.slice(0, 300), sequence };
  }
}
