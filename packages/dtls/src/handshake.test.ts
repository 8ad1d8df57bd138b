import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeSession } from './client.ts';
import { peekClientHello } from './connection.ts';
import { DtlsError } from './errors.ts';
import {
  CipherSuite,
  HandshakeType,
  Reassembler,
  decodeCertificate,
  decodeCertificateRequest,
  decodeClientHello,
  decodeClientKeyExchangeEcdhe,
  decodeClientKeyExchangePsk,
  decodeDigitallySigned,
  decodeFinished,
  decodeHandshakeFragments,
  decodeHelloVerifyRequest,
  decodePskIdentityHint,
  decodeServerHello,
  decodeServerKeyExchangeEcdhe,
  decodeU16List,
  decodeU8List,
  encodeCertificate,
  encodeCertificateRequest,
  encodeClientHello,
  encodeServerHello,
  fragmentHandshake,
} from './handshake.ts';
import { ContentType, DTLS_1_2, decodeRecords, encodeRecord } from './record.ts';

describe('S13 DTLS handshake codecs (RFC 6347 §4.2, RFC 5246 §7.4)', () => {
  const hello = {
    clientVersion: DTLS_1_2,
    random: new Uint8Array(32).fill(7),
    sessionId: new Uint8Array(0),
    cookie: new Uint8Array(16).fill(9),
    cipherSuites: [CipherSuite.TLS_PSK_WITH_AES_128_CCM_8, CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8],
    compressionMethods: Uint8Array.of(0),
    extensions: [{ type: 23, data: new Uint8Array(0) }],
  };

  it('round-trips ClientHello, ServerHello, Certificate and CertificateRequest', () => {
    expect(decodeClientHello(encodeClientHello(hello))).toEqual(hello);
    const sh = { serverVersion: DTLS_1_2, random: new Uint8Array(32).fill(1), sessionId: new Uint8Array(32).fill(2), cipherSuite: 0xc0a8, compressionMethod: 0, extensions: [] };
    expect(decodeServerHello(encodeServerHello(sh))).toEqual(sh);
    const chain = [Uint8Array.of(1, 2, 3), Uint8Array.of(4)];
    expect(decodeCertificate(encodeCertificate(chain))).toEqual(chain);
    const cr = { certificateTypes: Uint8Array.of(64), signatureSchemes: [0x0403], authorities: [Uint8Array.of(0x30, 0)] };
    expect(decodeCertificateRequest(encodeCertificateRequest(cr))).toEqual(cr);
  });

  it('refuses duplicate extensions and trailing bytes, naming the structure', () => {
    const dup = encodeClientHello({ ...hello, extensions: [{ type: 23, data: new Uint8Array(0) }, { type: 23, data: new Uint8Array(0) }] });
    expect(() => decodeClientHello(dup)).toThrow(/extension 23 appears twice/);
    expect(() => decodeClientHello(new Uint8Array([...encodeClientHello(hello), 0, 0, 0]))).toThrow(DtlsError);
  });

  it('fragments a message and reassembles it from out-of-order, overlapping and duplicate fragments', () => {
    const body = Uint8Array.from({ length: 3000 }, (_, i) => i & 0xff);
    const frags = fragmentHandshake(HandshakeType.certificate, 4, body, 500).flatMap((f) => decodeHandshakeFragments(f));
    expect(frags.length).toBeGreaterThan(5);
    const r = new Reassembler(HandshakeType.certificate, body.length);
    const order = [...frags].reverse();
    for (const f of [order[0], ...order] as typeof frags) {
      expect(r.complete).toBe(false);
      r.add(f);
    }
    expect(r.complete).toBe(true);
    expect(r.body).toEqual(body);
    const bad = { ...(frags[0] as (typeof frags)[0]), length: 10 };
    expect(() => r.add(bad)).toThrow(/changes type or length/);
  });

  it('packs several records into one datagram and splits them again', () => {
    const a = encodeRecord({ type: ContentType.handshake, version: DTLS_1_2, epoch: 0, sequence: 1, fragment: Uint8Array.of(1) });
    const b = encodeRecord({ type: ContentType.alert, version: DTLS_1_2, epoch: 1, sequence: 2 ** 47, fragment: Uint8Array.of(2, 3) });
    const recs = decodeRecords(new Uint8Array([...a, ...b]));
    expect(recs.map((r) => [r.type, r.epoch, r.sequence, r.fragment.length])).toEqual([
      [22, 0, 1, 1],
      [21, 1, 2 ** 47, 2],
    ]);
  });
});

/** Every parser, given any bytes, returns or throws a DtlsError — never a TypeError/RangeError, never hangs. */
describe('S13 T2 DTLS parsers fuzzed (fast-check)', () => {
  const parsers: [string, (b: Uint8Array) => unknown][] = [
    ['records', decodeRecords],
    ['handshake fragments', decodeHandshakeFragments],
    ['ClientHello', decodeClientHello],
    ['ServerHello', decodeServerHello],
    ['HelloVerifyRequest', decodeHelloVerifyRequest],
    ['Certificate', decodeCertificate],
    ['ServerKeyExchange(ECDHE)', decodeServerKeyExchangeEcdhe],
    ['ServerKeyExchange(PSK)', decodePskIdentityHint],
    ['CertificateRequest', decodeCertificateRequest],
    ['ClientKeyExchange(PSK)', decodeClientKeyExchangePsk],
    ['ClientKeyExchange(ECDHE)', decodeClientKeyExchangeEcdhe],
    ['CertificateVerify', (b) => decodeDigitallySigned(b, 'CertificateVerify')],
    ['Finished', decodeFinished],
    ['u16 list', (b) => decodeU16List(b, 'x')],
    ['u8 list', (b) => decodeU8List(b, 'x')],
    ['session', decodeSession],
    ['peekClientHello', peekClientHello],
  ];
  const onlyTyped = (parse: (b: Uint8Array) => unknown) => (b: Uint8Array) => {
    try {
      parse(b);
    } catch (e) {
      if (!(e instanceof DtlsError)) throw e;
    }
  };
  for (const [name, parse] of parsers) {
    it(`${name}: random bytes give a value or a DtlsError`, () => {
      fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), onlyTyped(parse)), { numRuns: 1500 });
    });
  }
  it('mutations of a valid ClientHello datagram give a value or a DtlsError', () => {
    const valid = encodeRecord({
      type: ContentType.handshake,
      version: DTLS_1_2,
      epoch: 0,
      sequence: 0,
      fragment: fragmentHandshake(
        HandshakeType.client_hello,
        0,
        encodeClientHello({
          clientVersion: DTLS_1_2,
          random: new Uint8Array(32),
          sessionId: new Uint8Array(0),
          cookie: new Uint8Array(0),
          cipherSuites: [0xc0a8],
          compressionMethods: Uint8Array.of(0),
          extensions: [{ type: 10, data: Uint8Array.of(0, 2, 0, 23) }],
        }),
        1000,
      )[0] as Uint8Array,
    });
    expect(peekClientHello(valid)?.hello.cipherSuites).toEqual([0xc0a8]);
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), (edits) => {
        const m = Uint8Array.from(valid);
        for (const [i, v] of edits) m[i] = v;
        onlyTyped(peekClientHello)(m);
      }),
      { numRuns: 3000 },
    );
  });
});
