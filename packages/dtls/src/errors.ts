/** The one error type of @tips/dtls. `code` is what callers match on; `alert` is the TLS alert it maps to. */
export type DtlsErrorCode =
  | 'decode_error' // bytes do not parse as the structure the RFC describes
  | 'illegal_parameter'
  | 'unexpected_message'
  | 'protocol_version'
  | 'handshake_failure'
  | 'unknown_psk_identity'
  | 'bad_certificate'
  | 'unknown_ca'
  | 'certificate_revoked'
  | 'decrypt_error'
  | 'bad_record_mac'
  | 'insufficient_security'
  | 'internal_error'
  | 'timeout'
  | 'closed'
  | 'alert_received';

/** TLS AlertDescription numbers (RFC 5246 §7.2, RFC 4279 §2). */
export const AlertDescription = {
  close_notify: 0,
  unexpected_message: 10,
  bad_record_mac: 20,
  handshake_failure: 40,
  bad_certificate: 42,
  certificate_revoked: 44,
  certificate_unknown: 46,
  illegal_parameter: 47,
  unknown_ca: 48,
  decode_error: 50,
  decrypt_error: 51,
  protocol_version: 70,
  insufficient_security: 71,
  internal_error: 80,
  no_renegotiation: 100,
  unknown_psk_identity: 115,
} as const;

const ALERT_OF: Partial<Record<DtlsErrorCode, number>> = {
  decode_error: AlertDescription.decode_error,
  illegal_parameter: AlertDescription.illegal_parameter,
  unexpected_message: AlertDescription.unexpected_message,
  protocol_version: AlertDescription.protocol_version,
  handshake_failure: AlertDescription.handshake_failure,
  unknown_psk_identity: AlertDescription.unknown_psk_identity,
  bad_certificate: AlertDescription.bad_certificate,
  unknown_ca: AlertDescription.unknown_ca,
  certificate_revoked: AlertDescription.certificate_revoked,
  decrypt_error: AlertDescription.decrypt_error,
  bad_record_mac: AlertDescription.bad_record_mac,
  insufficient_security: AlertDescription.insufficient_security,
  internal_error: AlertDescription.internal_error,
};

export class DtlsError extends Error {
  override readonly name = 'DtlsError';
  constructor(
    readonly code: DtlsErrorCode,
    message: string,
  ) {
    super(message);
  }
  /** The fatal alert to send for this error, if any. */
  get alert(): number | undefined {
    return ALERT_OF[this.code];
  }
}
