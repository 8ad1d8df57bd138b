/**
 * DTLS 1.2 handshake messages (RFC 6347 §4.2, RFC 5246 §7.4, RFC 4279, RFC 8422): the fragment header,
 * fragmentation and reassembly, and one codec per message body.
 */
import { DtlsError } from './errors.ts';
import { Reader, Writer } from './wire.ts';

export const HandshakeType = {
  hello_request: 0,
  client_hello: 1,
  server_hello: 2,
  hello_verify_request: 3,
  certificate: 11,
  server_key_exchange: 12,
  certificate_request: 13,
  server_hello_done: 14,
  certificate_verify: 15,
  client_key_exchange: 16,
  finished: 20,
} as const;

export const CipherSuite = {
  TLS_PSK_WITH_AES_128_CCM_8: 0xc0a8,
  TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8: 0xc0ae,
  TLS_EMPTY_RENEGOTIATION_INFO_SCSV: 0x00ff,
} as const;

export const ExtensionType = {
  supported_groups: 10,
  ec_point_formats: 11,
  signature_algorithms: 13,
  extended_master_secret: 23,
  renegotiation_info: 0xff01,
} as const;

export const NamedGroup = { secp256r1: 23 } as const;
/** SignatureScheme ecdsa_secp256r1_sha256 = {hash sha256 (4), signature ecdsa (3)}. */
export const ECDSA_SHA256 = 0x0403;
export const ClientCertificateType = { ecdsa_sign: 64 } as const;
export const HANDSHAKE_HEADER_LENGTH = 12;
/** The biggest handshake message we accept (a certificate chain of a few P-256 certificates fits easily). */
export const MAX_HANDSHAKE_MESSAGE = 16 * 1024;

export interface HandshakeFragment {
  msgType: number;
  length: number;
  messageSeq: number;
  fragmentOffset: number;
  body: Uint8Array; // fragment_length bytes
}

export function decodeHandshakeFragments(recordFragment: Uint8Array): HandshakeFragment[] {
  const r = new Reader(recordFragment, 'Handshake');
  const out: HandshakeFragment[] = [];
  while (r.remaining > 0) {
    const msgType = r.u8('msg_type');
    const length = r.u24('length');
    const messageSeq = r.u16('message_seq');
    const fragmentOffset = r.u24('fragment_offset');
    const fragmentLength = r.u24('fragment_length');
    if (fragmentOffset + fragmentLength > length) {
      throw new DtlsError('decode_error', `Handshake: fragment ${fragmentOffset}+${fragmentLength} beyond length ${length}`);
    }
    if (length > MAX_HANDSHAKE_MESSAGE) throw new DtlsError('decode_error', `Handshake: length ${length} above ${MAX_HANDSHAKE_MESSAGE}`);
    out.push({ msgType, length, messageSeq, fragmentOffset, body: r.bytes(fragmentLength, 'fragment') });
  }
  return out;
}

export function encodeHandshakeFragment(f: HandshakeFragment): Uint8Array {
  return new Writer()
    .u8(f.msgType)
    .u24(f.length)
    .u16(f.messageSeq)
    .u24(f.fragmentOffset)
    .u24(f.body.length)
    .bytes(f.body)
    .finish();
}

/** The whole message as the transcript hashes it: one unfragmented DTLS handshake header (RFC 6347 §4.2.6). */
export function encodeHandshake(msgType: number, messageSeq: number, body: Uint8Array): Uint8Array {
  return encodeHandshakeFragment({ msgType, length: body.length, messageSeq, fragmentOffset: 0, body });
}

/** Splits a message into fragments whose encoding is at most `maxFragment` bytes each (header included). */
export function fragmentHandshake(msgType: number, messageSeq: number, body: Uint8Array, maxFragment: number): Uint8Array[] {
  const room = Math.max(1, maxFragment - HANDSHAKE_HEADER_LENGTH);
  if (body.length <= room) return [encodeHandshake(msgType, messageSeq, body)];
  const out: Uint8Array[] = [];
  for (let off = 0; off < body.length; off += room) {
    out.push(
      encodeHandshakeFragment({ msgType, length: body.length, messageSeq, fragmentOffset: off, body: body.subarray(off, off + room) }),
    );
  }
  return out;
}

/** Collects the fragments of one message; overlapping and duplicate fragments are fine (RFC 6347 §4.2.3). */
export class Reassembler {
  private buf: Uint8Array;
  private have: Uint8Array;
  private missing: number;
  constructor(
    readonly msgType: number,
    readonly length: number,
  ) {
    this.buf = new Uint8Array(length);
    this.have = new Uint8Array(length);
    this.missing = length;
  }
  add(f: HandshakeFragment): void {
    if (f.msgType !== this.msgType || f.length !== this.length) {
      throw new DtlsError('illegal_parameter', `Handshake: fragment of message_seq ${f.messageSeq} changes type or length`);
    }
    this.buf.set(f.body, f.fragmentOffset);
    for (let i = f.fragmentOffset; i < f.fragmentOffset + f.body.length; i++) {
      if (this.have[i] === 0) {
        this.have[i] = 1;
        this.missing--;
      }
    }
  }
  get complete(): boolean {
    return this.missing === 0;
  }
  get body(): Uint8Array {
    return this.buf;
  }
}

export interface Extension {
  type: number;
  data: Uint8Array;
}

function decodeExtensions(r: Reader, what: string): Extension[] {
  if (r.remaining === 0) return [];
  const block = new Reader(r.vector(2, 'extensions'), what);
  const out: Extension[] = [];
  const seen = new Set<number>();
  while (block.remaining > 0) {
    const type = block.u16('extension_type');
    if (seen.has(type)) throw new DtlsError('decode_error', `${what}: extension ${type} appears twice`);
    seen.add(type);
    out.push({ type, data: block.vector(2, 'extension_data') });
  }
  return out;
}

function encodeExtensions(w: Writer, exts: Extension[]): void {
  if (exts.length === 0) return;
  const e = new Writer();
  for (const x of exts) e.u16(x.type).vector(2, x.data);
  w.vector(2, e.finish());
}

export interface ClientHello {
  clientVersion: number;
  random: Uint8Array;
  sessionId: Uint8Array;
  cookie: Uint8Array;
  cipherSuites: number[];
  compressionMethods: Uint8Array;
  extensions: Extension[];
}

export function decodeClientHello(body: Uint8Array): ClientHello {
  const r = new Reader(body, 'ClientHello');
  const clientVersion = r.u16('client_version');
  const random = r.bytes(32, 'random');
  const sessionId = r.vector(1, 'session_id', 0, 32);
  const cookie = r.vector(1, 'cookie', 0, 255);
  const suites = new Reader(r.vector(2, 'cipher_suites', 2, 2 ** 16 - 2), 'ClientHello.cipher_suites');
  if (suites.remaining % 2 !== 0) throw new DtlsError('decode_error', 'ClientHello: cipher_suites length is odd');
  const cipherSuites: number[] = [];
  while (suites.remaining > 0) cipherSuites.push(suites.u16('cipher_suite'));
  const compressionMethods = r.vector(1, 'compression_methods', 1, 255);
  const extensions = decodeExtensions(r, 'ClientHello');
  r.end();
  return { clientVersion, random, sessionId, cookie, cipherSuites, compressionMethods, extensions };
}

export function encodeClientHello(m: ClientHello): Uint8Array {
  const w = new Writer().u16(m.clientVersion).bytes(m.random).vector(1, m.sessionId).vector(1, m.cookie);
  const s = new Writer();
  for (const c of m.cipherSuites) s.u16(c);
  w.vector(2, s.finish()).vector(1, m.compressionMethods);
  encodeExtensions(w, m.extensions);
  return w.finish();
}

export function decodeHelloVerifyRequest(body: Uint8Array): { serverVersion: number; cookie: Uint8Array } {
  const r = new Reader(body, 'HelloVerifyRequest');
  const serverVersion = r.u16('server_version');
  const cookie = r.vector(1, 'cookie', 0, 255);
  r.end();
  return { serverVersion, cookie };
}

export function encodeHelloVerifyRequest(serverVersion: number, cookie: Uint8Array): Uint8Array {
  return new Writer().u16(serverVersion).vector(1, cookie).finish();
}

export interface ServerHello {
  serverVersion: number;
  random: Uint8Array;
  sessionId: Uint8Array;
  cipherSuite: number;
  compressionMethod: number;
  extensions: Extension[];
}

export function decodeServerHello(body: Uint8Array): ServerHello {
  const r = new Reader(body, 'ServerHello');
  const serverVersion = r.u16('server_version');
  const random = r.bytes(32, 'random');
  const sessionId = r.vector(1, 'session_id', 0, 32);
  const cipherSuite = r.u16('cipher_suite');
  const compressionMethod = r.u8('compression_method');
  const extensions = decodeExtensions(r, 'ServerHello');
  r.end();
  return { serverVersion, random, sessionId, cipherSuite, compressionMethod, extensions };
}

export function encodeServerHello(m: ServerHello): Uint8Array {
  const w = new Writer().u16(m.serverVersion).bytes(m.random).vector(1, m.sessionId).u16(m.cipherSuite).u8(m.compressionMethod);
  encodeExtensions(w, m.extensions);
  return w.finish();
}

/** Certificate: certificate_list<0..2^24-1> of ASN.1Cert<1..2^24-1>. */
export function decodeCertificate(body: Uint8Array): Uint8Array[] {
  const r = new Reader(body, 'Certificate');
  const list = new Reader(r.vector(3, 'certificate_list'), 'Certificate.certificate_list');
  r.end();
  const out: Uint8Array[] = [];
  while (list.remaining > 0) out.push(list.vector(3, 'ASN.1Cert', 1));
  return out;
}

export function encodeCertificate(chain: Uint8Array[]): Uint8Array {
  const l = new Writer();
  for (const c of chain) l.vector(3, c);
  return new Writer().vector(3, l.finish()).finish();
}

/** ServerECDHParams (RFC 8422 §5.4): named_curve secp256r1 and the uncompressed point. */
export interface EcdheParams {
  namedCurve: number;
  point: Uint8Array;
}

export function encodeEcdheParams(p: EcdheParams): Uint8Array {
  return new Writer().u8(3 /* named_curve */).u16(p.namedCurve).vector(1, p.point).finish();
}

export interface ServerKeyExchangeEcdhe {
  params: EcdheParams;
  paramsBytes: Uint8Array;
  signatureScheme: number;
  signature: Uint8Array;
}

export function decodeServerKeyExchangeEcdhe(body: Uint8Array): ServerKeyExchangeEcdhe {
  const r = new Reader(body, 'ServerKeyExchange');
  const curveType = r.u8('curve_type');
  if (curveType !== 3) throw new DtlsError('illegal_parameter', `ServerKeyExchange: curve_type ${curveType}, expected 3 (named_curve)`);
  const namedCurve = r.u16('named_curve');
  const point = r.vector(1, 'public', 1);
  const paramsBytes = body.subarray(0, r.offset);
  const signatureScheme = r.u16('signature_algorithm');
  const signature = r.vector(2, 'signature', 1);
  r.end();
  return { params: { namedCurve, point }, paramsBytes, signatureScheme, signature };
}

export function encodeServerKeyExchangeEcdhe(paramsBytes: Uint8Array, signatureScheme: number, signature: Uint8Array): Uint8Array {
  return new Writer().bytes(paramsBytes).u16(signatureScheme).vector(2, signature).finish();
}

/** PSK ServerKeyExchange carries only psk_identity_hint (RFC 4279 §2); RFC 7925 §4.2 says do not send one. */
export function decodePskIdentityHint(body: Uint8Array): Uint8Array {
  const r = new Reader(body, 'ServerKeyExchange(PSK)');
  const hint = r.vector(2, 'psk_identity_hint');
  r.end();
  return hint;
}

export interface CertificateRequest {
  certificateTypes: Uint8Array;
  signatureSchemes: number[];
  authorities: Uint8Array[];
}

export function decodeCertificateRequest(body: Uint8Array): CertificateRequest {
  const r = new Reader(body, 'CertificateRequest');
  const certificateTypes = r.vector(1, 'certificate_types', 1);
  const algs = new Reader(r.vector(2, 'supported_signature_algorithms', 2), 'CertificateRequest.supported_signature_algorithms');
  const signatureSchemes: number[] = [];
  while (algs.remaining > 0) signatureSchemes.push(algs.u16('SignatureAndHashAlgorithm'));
  const ca = new Reader(r.vector(2, 'certificate_authorities'), 'CertificateRequest.certificate_authorities');
  const authorities: Uint8Array[] = [];
  while (ca.remaining > 0) authorities.push(ca.vector(2, 'DistinguishedName', 1));
  r.end();
  return { certificateTypes, signatureSchemes, authorities };
}

export function encodeCertificateRequest(m: CertificateRequest): Uint8Array {
  const s = new Writer();
  for (const a of m.signatureSchemes) s.u16(a);
  const ca = new Writer();
  for (const dn of m.authorities) ca.vector(2, dn);
  return new Writer().vector(1, m.certificateTypes).vector(2, s.finish()).vector(2, ca.finish()).finish();
}

/** ClientKeyExchange for PSK (psk_identity<0..2^16-1>) — RFC 7925 §4.2 caps identities at 128 bytes. */
export function decodeClientKeyExchangePsk(body: Uint8Array): Uint8Array {
  const r = new Reader(body, 'ClientKeyExchange(PSK)');
  const id = r.vector(2, 'psk_identity', 0, 128);
  r.end();
  return id;
}

export function encodeClientKeyExchangePsk(identity: Uint8Array): Uint8Array {
  return new Writer().vector(2, identity).finish();
}

/** ClientKeyExchange for ECDHE: ClientECDiffieHellmanPublic, ecdh_Yc<1..2^8-1>. */
export function decodeClientKeyExchangeEcdhe(body: Uint8Array): Uint8Array {
  const r = new Reader(body, 'ClientKeyExchange(ECDHE)');
  const point = r.vector(1, 'ecdh_Yc', 1);
  r.end();
  return point;
}

export function encodeClientKeyExchangeEcdhe(point: Uint8Array): Uint8Array {
  return new Writer().vector(1, point).finish();
}

export function decodeDigitallySigned(body: Uint8Array, what: string): { scheme: number; signature: Uint8Array } {
  const r = new Reader(body, what);
  const scheme = r.u16('signature_algorithm');
  const signature = r.vector(2, 'signature', 1);
  r.end();
  return { scheme, signature };
}

export function encodeDigitallySigned(scheme: number, signature: Uint8Array): Uint8Array {
  return new Writer().u16(scheme).vector(2, signature).finish();
}

export function decodeFinished(body: Uint8Array): Uint8Array {
  if (body.length !== 12) throw new DtlsError('decode_error', `Finished: verify_data is ${body.length} bytes, expected 12`);
  return body;
}

/** Reads a u16 list from an extension body such as supported_groups or signature_algorithms. */
export function decodeU16List(data: Uint8Array, what: string): number[] {
  const r = new Reader(data, what);
  const l = new Reader(r.vector(2, 'list'), what);
  r.end();
  const out: number[] = [];
  while (l.remaining > 1) out.push(l.u16('item'));
  l.end();
  return out;
}

export function decodeU8List(data: Uint8Array, what: string): number[] {
  const r = new Reader(data, what);
  const l = r.vector(1, 'list');
  r.end();
  return [...l];
}

export function encodeU16List(items: number[]): Uint8Array {
  const l = new Writer();
  for (const i of items) l.u16(i);
  return new Writer().vector(2, l.finish()).finish();
}
