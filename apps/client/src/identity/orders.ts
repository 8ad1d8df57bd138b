/**
 * Re-enrollment "when a signed update says so" (S6, S14): an order is a SUIT envelope for the
 * component ["tips", "enrollment"], signed by an operator of the metal's trust list, carrying as its
 * integrated payload a fresh one-use enrollment secret and the EST server (@tips/trust
 * encodeReenrollment). The metal verifies it against its kept trust list — an unsigned order, one
 * signed by a key not in the list, or one whose digest does not cover the payload is refused — and
 * its sequence number must be above the last order it obeyed (a replayed order is not obeyed twice).
 * Obeying it is a new key and simpleenroll with that secret: key rotation, and recovery from a
 * certificate an update broke.
 */
import { asSuitError, componentKey, SuitError, verifyEnvelope } from '@tips/suit';
import { ENROLLMENT_COMPONENT, operatorKeys, type ReenrollmentInstruction, reenrollmentFromUpdate, TrustListError, type TrustList } from '@tips/trust';

export const ENROLLMENT_COMPONENT_KEY = componentKey(ENROLLMENT_COMPONENT);

export type OrderDecision = { ok: true; instruction: ReenrollmentInstruction; sequence: number } | { ok: false; reason: string; detail: string };

export async function judgeReenrollOrder(trust: TrustList, envelope: Uint8Array, sequences: Record<string, number>): Promise<OrderDecision> {
  try {
    const verified = await verifyEnvelope(envelope, { trust: operatorKeys(trust), sequenceStore: { get: (c) => sequences[c] } });
    const payloads = [...verified.envelope.integrated.values()];
    if (payloads.length !== 1) throw new SuitError('suit_payload_mismatch', `integrated payloads: expected exactly the re-enrollment instruction, came ${payloads.length}`);
    const instruction = reenrollmentFromUpdate(verified, payloads[0]!);
    return { ok: true, instruction, sequence: Number(verified.manifest.sequenceNumber) };
  } catch (e) {
    if (e instanceof TrustListError) return { ok: false, reason: e.code, detail: e.message };
    const se = asSuitError(e);
    return { ok: false, reason: se.code, detail: se.message.slice(0, 300) };
  }
}
