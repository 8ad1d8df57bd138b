/**
 * The signed acknowledgement (contract C `POST /reports`): a COSE_Sign1 by the metal's certificate
 * key (ES256) over the CBOR map { glazeId, spaceId, result, reason, sequence, at } — the master
 * checks it against the certificate the metal enrolled with, so no one else can report for it.
 */
import { type CborValue, coseSign1Sign, encodeCbor, HEADER_ALG, importKey, ALG_ES256 } from '@tips/suit';

export interface InstallReport {
  glazeId: string;
  spaceId: string;
  result: 'installed' | 'failed' | 'rolled_back';
  reason: string | null;
  /** The manifest's sequence number; 0 when the manifest could not even be decoded. */
  sequence: number;
  at: string;
}

export function encodeInstallReport(r: InstallReport): Uint8Array {
  return encodeCbor(
    new Map<CborValue, CborValue>([
      ['glazeId', r.glazeId],
      ['spaceId', r.spaceId],
      ['result', r.result],
      ['reason', r.reason],
      ['sequence', r.sequence],
      ['at', r.at],
    ]),
  );
}

export function signInstallReport(r: InstallReport, keyPem: string): Uint8Array {
  return coseSign1Sign({ protectedHeaders: new Map<CborValue, CborValue>([[HEADER_ALG, ALG_ES256]]), payload: encodeInstallReport(r) }, importKey(keyPem));
}
