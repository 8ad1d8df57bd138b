/** Why a DHCP message was refused. Matched on `code`; `field` names the offending header field or option. */
export type DhcpErrorCode =
  | 'bad_input'
  | 'too_short'
  | 'too_long'
  | 'bad_field'
  | 'unsupported_hardware'
  | 'bad_magic_cookie'
  | 'truncated_option'
  | 'missing_end'
  | 'trailing_bytes'
  | 'bad_option_length'
  | 'bad_option_value'
  | 'option_overload_unsupported'
  | 'missing_message_type';

export class DhcpError extends Error {
  constructor(
    readonly code: DhcpErrorCode,
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = 'DhcpError';
  }
}
