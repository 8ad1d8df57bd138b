/**
 * Voucher files: the CBOR bytes, or the same bytes armoured as FDO tools exchange them
 * (`-----BEGIN OWNERSHIP VOUCHER-----`, base64: the PEM label fido-device-onboard-rs uses).
 */
import { VoucherError } from './errors.ts';

const LABEL = 'OWNERSHIP VOUCHER';
const ARMOR_RE = /^\s*-----BEGIN OWNERSHIP VOUCHER-----\r?\n([A-Za-z0-9+/=\r\n]+?)-----END OWNERSHIP VOUCHER-----\s*$/;

export function armorVoucher(bytes: Uint8Array): string {
  const b64 = Buffer.from(bytes).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${LABEL}-----\n${lines.join('\n')}\n-----END ${LABEL}-----\n`;
}

/** The voucher bytes of a file: armoured text or raw CBOR (anything else is left to the decoder). */
export function readVoucherFile(content: Uint8Array): Uint8Array {
  const head = Buffer.from(content.subarray(0, 64)).toString('latin1');
  if (!head.trimStart().startsWith('-----BEGIN')) return content;
  const m = ARMOR_RE.exec(Buffer.from(content).toString('latin1'));
  if (!m) throw new VoucherError('voucher_malformed', `expected "-----BEGIN ${LABEL}-----", base64 and "-----END ${LABEL}-----", came other armour`);
  return new Uint8Array(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
}
