/**
 * One error type for the codec, with a literal `code` union; code matches on `code`, never on the
 * message. Every malformed datagram surfaces as a CoapFormatError and nothing else (RFC 7252 §3:
 * "processed as a message format error").
 */
export type CoapFormatErrorCode =
  | 'coap_truncated'
  | 'coap_bad_version'
  | 'coap_bad_token_length'
  | 'coap_bad_empty_message'
  | 'coap_bad_option'
  | 'coap_empty_payload'
  | 'coap_bad_block'
  | 'coap_bad_message';

export class CoapFormatError extends Error {
  override readonly name = 'CoapFormatError';
  constructor(
    readonly code: CoapFormatErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** A request this endpoint sent got no answer (MAX_RETRANSMIT exhausted) or was reset by the peer. */
export class CoapExchangeError extends Error {
  override readonly name = 'CoapExchangeError';
  constructor(
    readonly code: 'coap_timeout' | 'coap_reset' | 'coap_closed' | 'coap_peer_closed',
    message: string,
  ) {
    super(message);
  }
}
