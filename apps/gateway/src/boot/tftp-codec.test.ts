import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeTftp,
  encodeAck,
  encodeData,
  encodeError,
  encodeOack,
  encodeRequest,
  ERROR_CODE,
  negotiate,
  OPCODE,
  TftpError,
} from './tftp-codec.ts';

const LIMITS = { maxBlksize: 1468, maxWindowsize: 64, defaultTimeoutSec: 1 };

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof TftpError) return e.code;
    throw e;
  }
  return 'no error';
}

describe('T13 TFTP codec (RFC 1350, 2347, 2348, 2349, 7440)', () => {
  it('decodes a read request as atftp sends it: filename, mode, options lower-cased', () => {
    // Bytes of `atftp --option "blksize 1428" --option "tsize enable" --option "windowsize 4" -g -r undionly.kpxe`.
    const wire = Buffer.from('\0\x01undionly.kpxe\0octet\0BLKSIZE\x001428\0tsize\x000\0windowsize\x004\0', 'latin1');
    const p = decodeTftp(wire);
    expect(p).toEqual({
      op: OPCODE.RRQ,
      filename: 'undionly.kpxe',
      mode: 'octet',
      options: new Map([
        ['blksize', '1428'],
        ['tsize', '0'],
        ['windowsize', '4'],
      ]),
    });
    expect(Buffer.from(encodeRequest(OPCODE.RRQ, 'undionly.kpxe', 'octet', new Map([['blksize', '1428']]))).toString('latin1')).toBe(
      '\0\x01undionly.kpxe\0octet\0blksize\x001428\0',
    );
  });

  it('encodes DATA, ACK, ERROR and OACK byte for byte', () => {
    expect(Buffer.from(encodeData(0x1_0002, Uint8Array.of(9, 8))).toString('hex')).toBe('000300020908');
    expect(Buffer.from(encodeAck(7)).toString('hex')).toBe('00040007');
    expect(Buffer.from(encodeError(ERROR_CODE.ACCESS_VIOLATION, 'read-only')).toString('latin1')).toBe('\0\x05\0\x02read-only\0');
    expect(Buffer.from(encodeOack(new Map([['blksize', '1428'], ['tsize', '74213']]))).toString('latin1')).toBe('\0\x06blksize\x001428\0tsize\x0074213\0');
    expect(decodeTftp(encodeError(1, 'x\u00e9'))).toEqual({ op: OPCODE.ERROR, code: 1, message: 'x?' });
  });

  it('refuses what is not a well-formed packet, saying what was expected', () => {
    expect(codeOf(() => decodeTftp(Uint8Array.of(0, 1, 0)))).toBe('too_short');
    expect(codeOf(() => decodeTftp(Uint8Array.of(0, 9, 0, 0)))).toBe('bad_opcode');
    expect(codeOf(() => decodeTftp(Buffer.from('\0\x01file\0octet', 'latin1')))).toBe('bad_string');
    expect(codeOf(() => decodeTftp(Buffer.from('\0\x01file\0binary\0', 'latin1')))).toBe('bad_mode');
    expect(codeOf(() => decodeTftp(Buffer.from('\0\x01file\0octet\0blksize\0', 'latin1')))).toBe('bad_string');
    expect(codeOf(() => decodeTftp(Buffer.from('\0\x01file\0octet\0blksize\x00512\0BlkSize\x00512\0', 'latin1')))).toBe('duplicate_option');
    expect(codeOf(() => decodeTftp(Buffer.from('\0\x01fi\x01le\0octet\0', 'latin1')))).toBe('bad_string');
    expect(codeOf(() => decodeTftp(Buffer.from('\0\x01\0octet\0', 'latin1')))).toBe('bad_string');
    expect(codeOf(() => decodeTftp(Uint8Array.of(0, 4, 0, 1, 0)))).toBe('trailing_bytes');
    expect(codeOf(() => decodeTftp(new Uint8Array(600).fill(0x41).fill(0, 0, 1).fill(1, 1, 2)))).toBe('too_long');
  });

  it('negotiates blksize within 8..65464 capped by our limit, tsize as the file size, timeout 1..255, windowsize capped', () => {
    const opts = (o: Record<string, string>) => new Map(Object.entries(o));
    const p = negotiate(opts({ blksize: '1428', tsize: '0', timeout: '3', windowsize: '4' }), 74_213, LIMITS);
    expect(p).toMatchObject({ blksize: 1428, timeoutSec: 3, windowsize: 4 });
    expect(p.acknowledged).toEqual(opts({ blksize: '1428', timeout: '3', tsize: '74213', windowsize: '4' }));
    const capped = negotiate(opts({ blksize: '65464', windowsize: '1000' }), 10, LIMITS);
    expect(capped).toMatchObject({ blksize: 1468, windowsize: 64 });
    expect(capped.acknowledged).toEqual(opts({ blksize: '1468', windowsize: '64' }));
    // Out of range or unknown: not acknowledged, RFC 1350 defaults stay.
    const ignored = negotiate(opts({ blksize: '7', timeout: '0', windowsize: '0', tsize: '5', multicast: '' }), 10, LIMITS);
    expect(ignored).toMatchObject({ blksize: 512, timeoutSec: 1, windowsize: 1 });
    expect(ignored.acknowledged.size).toBe(0);
    expect(negotiate(opts({ blksize: '65465' }), 10, LIMITS).acknowledged.size).toBe(0);
    expect(negotiate(opts({ blksize: '8' }), 10, LIMITS).blksize).toBe(8);
    expect(negotiate(opts({ timeout: '256' }), 10, LIMITS).acknowledged.size).toBe(0);
    expect(negotiate(opts({ blksize: '0x200' }), 10, LIMITS).acknowledged.size).toBe(0);
  });

  it('fuzz: any bytes decode or fail with a TftpError; requests round-trip', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 700 }), (b) => {
        try {
          decodeTftp(b);
        } catch (e) {
          if (!(e instanceof TftpError)) throw e;
        }
      }),
      { numRuns: 3000 },
    );
    const name = fc.stringMatching(/^[\x21-\x7e]{1,40}$/);
    fc.assert(
      fc.property(name, fc.constantFrom('octet', 'netascii'), fc.dictionary(fc.stringMatching(/^[a-z]{1,10}$/), fc.stringMatching(/^[0-9]{1,6}$/), { maxKeys: 4 }), (f, mode, o) => {
        const options = new Map(Object.entries(o));
        const p = decodeTftp(encodeRequest(OPCODE.RRQ, f, mode as 'octet', options));
        expect(p).toEqual({ op: OPCODE.RRQ, filename: f, mode, options });
      }),
    );
  });
});
