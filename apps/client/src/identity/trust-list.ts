/**
 * S5: which trust list the metal keeps. The trust list decides whose manifests the metal installs,
 * so the master (or anyone between it and the metal) must not be able to widen it:
 *
 *   - first use: with no list kept, the list the master serves over mTLS (our CA pinned) is adopted —
 *     the Phase 1 image may also have written one;
 *   - unsigned: a list the master serves later is adopted only when it **narrows** the kept one
 *     (a higher version, every operator key and every update-server fingerprint already in the kept
 *     list) — revoking an operator key reaches the metals without a signature, adding one does not;
 *   - signed: anything else needs a SUIT envelope for the component ["tips", "trust-list"], signed by
 *     an operator of the kept list, carrying the new list as its integrated payload, whose image
 *     digest covers it, with a higher version (@tips/trust applyTrustListUpdate).
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { asSuitError, componentKey, SuitError, verifyEnvelope } from '@tips/suit';
import { applyTrustListUpdate, decodeTrustList, operatorKeys, TRUST_LIST_COMPONENT, TrustListError, type TrustList } from '@tips/trust';

export interface KeptTrustList {
  list: TrustList;
  bytes: Uint8Array;
}

export type TrustListDecision =
  | { adopt: true; list: TrustList; bytes: Uint8Array; how: 'first_use' | 'narrowed' | 'signed'; sequence?: number }
  | { adopt: false; reason: 'unchanged' | 'trust_list_rollback' | 'trust_list_unsigned' | 'trust_list_malformed' | string; detail: string };

export const TRUST_LIST_COMPONENT_KEY = componentKey(TRUST_LIST_COMPONENT);

const spkiHex = (k: KeyObject): string => (k.type === 'private' ? createPublicKey(k) : k).export({ type: 'spki', format: 'der' }).toString('hex');

/** True when `next` grants nothing `kept` does not: its operators and server fingerprints are a subset. */
export function narrows(kept: TrustList, next: TrustList): boolean {
  const keys = new Set(kept.operators.map((o) => spkiHex(o.publicKey)));
  if (!next.operators.every((o) => keys.has(spkiHex(o.publicKey)))) return false;
  const fps = new Set(kept.updateServers.flatMap((s) => [...s.caFingerprints.map((f) => `ca:${f}`), ...s.certFingerprints.map((f) => `cert:${f}`)]));
  return next.updateServers.every((s) => s.caFingerprints.every((f) => fps.has(`ca:${f}`)) && s.certFingerprints.every((f) => fps.has(`cert:${f}`)));
}

/** The list the master serves (`GET /trust-list`, unsigned): adopted at first use, or when it only narrows. */
export function judgeServedList(kept: KeptTrustList | undefined, offered: Uint8Array): TrustListDecision {
  let list: TrustList;
  try {
    list = decodeTrustList(offered);
  } catch (e) {
    return { adopt: false, reason: 'trust_list_malformed', detail: (e as Error).message };
  }
  if (!kept) return { adopt: true, list, bytes: offered, how: 'first_use' };
  if (Buffer.from(offered).equals(Buffer.from(kept.bytes))) return { adopt: false, reason: 'unchanged', detail: '' };
  if (list.version <= kept.list.version) return { adopt: false, reason: 'trust_list_rollback', detail: `version ${list.version} is not above the kept ${kept.list.version}` };
  if (!narrows(kept.list, list)) {
    return { adopt: false, reason: 'trust_list_unsigned', detail: `version ${list.version} adds operators or update servers; a signed trust-list update is required` };
  }
  return { adopt: true, list, bytes: offered, how: 'narrowed' };
}

/**
 * A signed trust-list update (SUIT envelope, the new list integrated): verified against the kept
 * list's operators, then applied by @tips/trust (signer, component, digest, higher version).
 */
export async function judgeSignedList(kept: KeptTrustList, envelope: Uint8Array, sequences: Record<string, number>): Promise<TrustListDecision> {
  try {
    const verified = await verifyEnvelope(envelope, { trust: operatorKeys(kept.list), sequenceStore: { get: (c) => sequences[c] } });
    const payloads = [...verified.envelope.integrated.values()];
    if (payloads.length !== 1) throw new SuitError('suit_payload_mismatch', `integrated payloads: expected exactly the new trust list, came ${payloads.length}`);
    const list = applyTrustListUpdate(kept.list, verified, payloads[0]!);
    return { adopt: true, list, bytes: payloads[0]!, how: 'signed', sequence: Number(verified.manifest.sequenceNumber) };
  } catch (e) {
    if (e instanceof TrustListError) return { adopt: false, reason: e.code, detail: e.message };
    const se = asSuitError(e);
    return { adopt: false, reason: se.code, detail: se.message.slice(0, 300) };
  }
}
