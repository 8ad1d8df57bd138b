/**
 * One error type for the package, with a literal `code` union. Code matches on `code`, never on
 * the message. `reportReason` maps each code to the SUIT_Report reason code a device sends back
 * (draft-ietf-suit-report §4, suit-report-reasons).
 */

export const CBOR_ERROR_CODES = [
  'cbor_truncated',
  'cbor_trailing_bytes',
  'cbor_non_minimal',
  'cbor_indefinite_length',
  'cbor_unexpected_break',
  'cbor_reserved',
  'cbor_duplicate_key',
  'cbor_too_deep',
  'cbor_length_exceeds_input',
  'cbor_invalid_utf8',
  'cbor_unsupported',
] as const;
export type CborErrorCode = (typeof CBOR_ERROR_CODES)[number];

export const SUIT_ERROR_CODES = [
  ...CBOR_ERROR_CODES,
  // structure
  'suit_bad_type',
  'suit_bad_tag',
  'suit_missing_member',
  'suit_unknown_critical_key',
  'suit_unsupported_version',
  'suit_bad_value',
  // COSE and keys
  'cose_bad_structure',
  'cose_alg_unsupported',
  'cose_unknown_critical_header',
  'cose_key_invalid',
  'cose_key_alg_mismatch',
  'cose_payload_missing',
  // authentication
  'suit_unsigned',
  'suit_untrusted_key',
  'suit_signature_invalid',
  'suit_digest_alg_unsupported',
  'suit_digest_mismatch',
  'suit_severed_mismatch',
  'suit_severed_missing',
  // anti-rollback and policy
  'suit_rollback',
  'suit_vendor_mismatch',
  'suit_class_mismatch',
  'suit_component_not_allowed',
  // execution
  'suit_command_unsupported',
  'suit_parameter_unsupported',
  'suit_parameter_missing',
  'suit_component_unsupported',
  'suit_condition_failed',
  'suit_operation_failed',
  'suit_abort',
  // glaze binding and reports
  'glaze_digest_mismatch',
  'report_bad_structure',
  // integrated payloads against their image digests (appended: result codes are list indexes)
  'suit_payload_mismatch',
] as const;
export type SuitErrorCode = (typeof SUIT_ERROR_CODES)[number];

/** SUIT report reason codes (draft-ietf-suit-report-18, SUIT_Report_Reasons). */
export const SUIT_REPORT_REASON = {
  ok: 0,
  'cbor-parse': 1,
  'cose-unsupported': 2,
  'alg-unsupported': 3,
  unauthorised: 4,
  'command-unsupported': 5,
  'component-unsupported': 6,
  'component-unauthorised': 7,
  'parameter-unsupported': 8,
  'severing-unsupported': 9,
  'condition-failed': 10,
  'operation-failed': 11,
  'invoke-pending': 12,
} as const;
export type SuitReportReasonName = keyof typeof SUIT_REPORT_REASON;
export type SuitReportReason = (typeof SUIT_REPORT_REASON)[SuitReportReasonName];

export class SuitError extends Error {
  constructor(
    readonly code: SuitErrorCode,
    message: string,
    /** Byte offset in the input where decoding stopped, when the error came from the CBOR layer. */
    readonly offset?: number,
  ) {
    super(message);
    this.name = 'SuitError';
  }
}

export class CborError extends SuitError {
  constructor(code: CborErrorCode, message: string, offset?: number) {
    super(code, message, offset);
    this.name = 'CborError';
  }
}

/** The SUIT_Report reason a device reports for an error. */
export function reportReason(code: SuitErrorCode): SuitReportReason {
  if (code.startsWith('cbor_')) return SUIT_REPORT_REASON['cbor-parse'];
  switch (code) {
    case 'suit_bad_type':
    case 'suit_bad_tag':
    case 'suit_missing_member':
    case 'suit_unknown_critical_key':
    case 'suit_unsupported_version':
    case 'suit_bad_value':
    case 'report_bad_structure':
      return SUIT_REPORT_REASON['cbor-parse'];
    case 'cose_bad_structure':
    case 'cose_unknown_critical_header':
    case 'cose_payload_missing':
      return SUIT_REPORT_REASON['cose-unsupported'];
    case 'cose_alg_unsupported':
    case 'cose_key_alg_mismatch':
    case 'suit_digest_alg_unsupported':
      return SUIT_REPORT_REASON['alg-unsupported'];
    case 'cose_key_invalid':
    case 'suit_unsigned':
    case 'suit_untrusted_key':
    case 'suit_signature_invalid':
    case 'suit_digest_mismatch':
    case 'suit_severed_mismatch':
    case 'suit_rollback':
      return SUIT_REPORT_REASON.unauthorised;
    case 'suit_severed_missing':
      return SUIT_REPORT_REASON['severing-unsupported'];
    case 'suit_vendor_mismatch':
    case 'suit_class_mismatch':
    case 'suit_payload_mismatch':
    case 'suit_condition_failed':
    case 'suit_abort':
      return SUIT_REPORT_REASON['condition-failed'];
    case 'suit_component_not_allowed':
      return SUIT_REPORT_REASON['component-unauthorised'];
    case 'suit_command_unsupported':
      return SUIT_REPORT_REASON['command-unsupported'];
    case 'suit_parameter_unsupported':
    case 'suit_parameter_missing':
      return SUIT_REPORT_REASON['parameter-unsupported'];
    case 'suit_component_unsupported':
      return SUIT_REPORT_REASON['component-unsupported'];
    default:
      return SUIT_REPORT_REASON['operation-failed'];
  }
}

/** Turns anything thrown inside the package into a SuitError (a bug surfaces as operation-failed). */
export function asSuitError(e: unknown): SuitError {
  if (e instanceof SuitError) return e;
  return new SuitError('suit_operation_failed', e instanceof Error ? e.message : String(e));
}
