import { DomainError } from '../../http/errors.ts';

export type RendezvousErrorCode =
  /** Registration: the voucher's chain does not hold (the message names the link). */
  | 'voucher_invalid'
  /** Registration: the to1d is not signed by the voucher's current owner, is for another GUID, or has expired. */
  | 'to1d_invalid'
  /** Registration by an owner earlier in the chain than the one already registered. */
  | 'registration_superseded'
  /** TO1: rendezvous never saw this GUID (or its registration expired). */
  | 'guid_unknown'
  /** TO1: the proof is not signed by the device key the voucher binds, or its nonce is not one we gave. */
  | 'proof_invalid'
  | 'malformed';

export class RendezvousError extends DomainError<RendezvousErrorCode> {
  constructor(code: RendezvousErrorCode, message: string, field?: string) {
    super('rendezvous', code, message, field);
  }
}
