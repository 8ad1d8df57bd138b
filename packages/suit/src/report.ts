/**
 * SUIT_Report (draft-ietf-suit-report-18): what a device did with a manifest, signed by the device
 * as a COSE_Sign1 with the report as attached payload, so the master can read what happened.
 *
 * SUIT_Report = { 99: [uri, SUIT_Digest], ? 2: nonce, 3: [* SUIT_Record / system-property-claims],
 *                 4: true / { 5: result-code, 6: SUIT_Record, 7: reason }, ? 8: capabilities }
 * SUIT_Record = [manifest-id [* uint], manifest-section int, section-offset uint,
 *                component-index uint, record-properties {* param => value}]
 */
import { type CborMap, type CborValue, decodeCbor, encodeCbor, typeName } from './cbor.ts';
import { type CoseSingle, coseSign1Sign, coseSign1Verify, HEADER_ALG, HEADER_KID } from './cose.ts';
import { reportReason as reasonOf, SUIT_ERROR_CODES, SUIT_REPORT_REASON, SuitError, type SuitErrorCode, type SuitReportReason } from './errors.ts';
import type { RunResult } from './interpreter.ts';
import { type CoseKey, defaultAlgFor } from './keys.ts';
import { encodeDigest, parseDigest, type SuitDigest } from './manifest.ts';
import type { AuthenticatedFields } from './verify.ts';

export const SUIT_REPORT_NONCE = 2;
export const SUIT_REPORT_RECORDS = 3;
export const SUIT_REPORT_RESULT = 4;
export const SUIT_REPORT_RESULT_CODE = 5;
export const SUIT_REPORT_RESULT_RECORD = 6;
export const SUIT_REPORT_RESULT_REASON = 7;
export const SUIT_REPORT_CAPABILITY_REPORT = 8;
export const SUIT_REFERENCE = 99;

export interface SuitRecord {
  manifestId: number[];
  section: number;
  offset: number;
  componentIndex: number;
  properties: CborMap;
}

export interface SuitReport {
  reference: { uri: string; digest: SuitDigest };
  nonce?: Uint8Array;
  /** SUIT_Record arrays, or system-property-claims maps. */
  records: (SuitRecord | CborMap)[];
  /** true, or the failure: a result code (the index of the TIPS error code), the record, the reason. */
  result: true | { code: number; record: SuitRecord; reason: SuitReportReason };
}

function bad(message: string): never {
  throw new SuitError('report_bad_structure', message);
}

function encodeRecord(r: SuitRecord): CborValue {
  return [r.manifestId, r.section, r.offset, r.componentIndex, r.properties];
}

function parseRecord(v: CborValue, field: string): SuitRecord {
  if (!Array.isArray(v) || v.length < 5) bad(`${field}: expected a 5-element SUIT_Record, came ${typeName(v)}`);
  const [id, section, offset, ci, props] = v;
  if (!Array.isArray(id) || !id.every((x) => typeof x === 'number')) bad(`${field}.manifest-id: expected [* uint]`);
  if (typeof section !== 'number') bad(`${field}.manifest-section: expected int, came ${typeName(section!)}`);
  if (typeof offset !== 'number' || offset < 0) bad(`${field}.section-offset: expected uint`);
  if (typeof ci !== 'number' || ci < 0) bad(`${field}.component-index: expected uint`);
  if (!(props instanceof Map)) bad(`${field}.record-properties: expected a map, came ${typeName(props!)}`);
  return { manifestId: id as number[], section, offset, componentIndex: ci, properties: props };
}

/** The stable result code for a TIPS error code (its index in SUIT_ERROR_CODES, plus one). */
export function resultCodeOf(code: SuitErrorCode): number {
  return SUIT_ERROR_CODES.indexOf(code) + 1;
}
export function errorCodeOfResult(resultCode: number): SuitErrorCode | undefined {
  return SUIT_ERROR_CODES[resultCode - 1];
}

export function encodeReport(r: SuitReport): Uint8Array {
  const m: CborMap = new Map();
  if (r.nonce) m.set(SUIT_REPORT_NONCE, r.nonce);
  m.set(
    SUIT_REPORT_RECORDS,
    r.records.map((x) => (x instanceof Map ? x : encodeRecord(x))),
  );
  m.set(
    SUIT_REPORT_RESULT,
    r.result === true
      ? true
      : new Map<CborValue, CborValue>([
          [SUIT_REPORT_RESULT_CODE, r.result.code],
          [SUIT_REPORT_RESULT_RECORD, encodeRecord(r.result.record)],
          [SUIT_REPORT_RESULT_REASON, r.result.reason],
        ]),
  );
  m.set(SUIT_REFERENCE, [r.reference.uri, encodeDigest(r.reference.digest)]);
  return encodeCbor(m);
}

export function decodeReport(bytes: Uint8Array): SuitReport {
  const v = decodeCbor(bytes);
  if (!(v instanceof Map)) bad(`report: expected a map, came ${typeName(v)}`);
  const ref = v.get(SUIT_REFERENCE);
  if (!Array.isArray(ref) || ref.length !== 2 || typeof ref[0] !== 'string') bad('suit-reference: expected [uri, SUIT_Digest]');
  const records = v.get(SUIT_REPORT_RECORDS);
  if (!Array.isArray(records)) bad('suit-report-records: expected an array');
  const res = v.get(SUIT_REPORT_RESULT);
  let result: SuitReport['result'];
  if (res === true) result = true;
  else if (res instanceof Map) {
    const code = res.get(SUIT_REPORT_RESULT_CODE);
    const reason = res.get(SUIT_REPORT_RESULT_REASON);
    if (typeof code !== 'number') bad('suit-report-result-code: expected int');
    if (typeof reason !== 'number' || !(Object.values(SUIT_REPORT_REASON) as number[]).includes(reason)) bad('suit-report-result-reason: expected a known reason code');
    result = { code, record: parseRecord(res.get(SUIT_REPORT_RESULT_RECORD)!, 'suit-report-result-record'), reason: reason as SuitReportReason };
  } else bad('suit-report-result: expected true or a map');
  const nonce = v.get(SUIT_REPORT_NONCE);
  if (nonce !== undefined && !(nonce instanceof Uint8Array)) bad('suit-report-nonce: expected bstr');
  for (const k of v.keys()) {
    if (![SUIT_REPORT_NONCE, SUIT_REPORT_RECORDS, SUIT_REPORT_RESULT, SUIT_REPORT_CAPABILITY_REPORT, SUIT_REFERENCE].includes(k as number)) {
      bad(`report: expected known keys, came ${String(k)}`);
    }
  }
  const out: SuitReport = {
    reference: { uri: ref[0], digest: parseDigest(ref[1]!, 'suit-report-manifest-digest') },
    records: records.map((r, i) => (r instanceof Map ? r : parseRecord(r, `suit-report-records[${i}]`))),
    result,
  };
  if (nonce) out.nonce = nonce;
  return out;
}

/** A report for a run of a verified manifest. */
export function reportFromRun(verified: AuthenticatedFields, run: RunResult, options: { uri?: string; nonce?: Uint8Array } = {}): SuitReport {
  const r: SuitReport = {
    reference: { uri: options.uri ?? verified.manifest.referenceUri ?? '', digest: verified.manifestDigest },
    records: run.records,
    result: run.ok
      ? true
      : {
          code: resultCodeOf(run.failure!.code),
          reason: run.failure!.reason,
          record: { manifestId: [], section: run.failure!.section, offset: run.failure!.offset, componentIndex: run.failure!.componentIndex, properties: new Map() },
        },
  };
  if (options.nonce) r.nonce = options.nonce;
  return r;
}

/** A report for an envelope that failed before it could run (decode, authentication, policy). */
export function reportFromError(error: SuitError, reference: { uri: string; digest: SuitDigest }, nonce?: Uint8Array): SuitReport {
  const r: SuitReport = {
    reference,
    records: [],
    result: {
      code: resultCodeOf(error.code),
      reason: reasonOf(error.code),
      record: { manifestId: [], section: 0, offset: error.offset ?? 0, componentIndex: 0, properties: new Map() },
    },
  };
  if (nonce) r.nonce = nonce;
  return r;
}

/** The device signs its report: COSE_Sign1 with the report as attached payload. */
export function signReport(report: SuitReport, key: CoseKey, options: { kid?: Uint8Array; alg?: number } = {}): Uint8Array {
  const unprotected: CborMap = new Map();
  const kid = options.kid ?? key.kid;
  if (kid) unprotected.set(HEADER_KID, kid);
  return coseSign1Sign({ protectedHeaders: new Map([[HEADER_ALG, options.alg ?? defaultAlgFor(key)]]), unprotectedHeaders: unprotected, payload: encodeReport(report) }, key);
}

/** Verifies a signed report with the device's key(s) and decodes it. */
export function verifyReport(signed: Uint8Array | CoseSingle, deviceKeys: readonly CoseKey[]): SuitReport {
  const v = coseSign1Verify(signed, deviceKeys);
  return decodeReport(v.payload);
}
