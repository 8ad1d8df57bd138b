import { describe, expect, it } from 'vitest';
import { keyBlock, masterSecret, prf, pskPremaster } from './prf.ts';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('S13 DTLS PRF (RFC 5246 §5, P_SHA256)', () => {
  it('matches the TLS 1.2 PRF-SHA256 vector posted to the IETF TLS list (msg03416)', () => {
    const out = prf(hex('9bbe436ba940f017b17652849a71db35'), 'test label', hex('a0ba9f936cda311827a6f796ffd5198c'), 100);
    expect(toHex(out)).toBe(
      'e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff70187347b66',
    );
  });

  it('builds the RFC 4279 §2 plain-PSK premaster secret: len, zeros, len, key', () => {
    expect(toHex(pskPremaster(hex('0a0b0c')))).toBe('0003' + '000000' + '0003' + '0a0b0c');
  });

  it('the extended master secret (RFC 7627) differs from the plain one and binds the session hash', () => {
    const pms = hex('00'.repeat(48));
    const cr = hex('11'.repeat(32));
    const sr = hex('22'.repeat(32));
    const plain = masterSecret(pms, cr, sr);
    const ems1 = masterSecret(pms, cr, sr, hex('33'.repeat(32)));
    const ems2 = masterSecret(pms, cr, sr, hex('34'.repeat(32)));
    expect(plain).toHaveLength(48);
    expect(toHex(ems1)).not.toBe(toHex(plain));
    expect(toHex(ems1)).not.toBe(toHex(ems2));
  });

  it('splits the AES_128_CCM_8 key block into 16-byte keys and 4-byte salts, client first', () => {
    const m = hex('01'.repeat(48));
    const cr = hex('02'.repeat(32));
    const sr = hex('03'.repeat(32));
    const kb = keyBlock(m, cr, sr);
    const raw = prf(m, 'key expansion', new Uint8Array([...sr, ...cr]), 40);
    expect(toHex(kb.clientWriteKey)).toBe(toHex(raw.subarray(0, 16)));
    expect(toHex(kb.serverWriteKey)).toBe(toHex(raw.subarray(16, 32)));
    expect(toHex(kb.clientWriteIv)).toBe(toHex(raw.subarray(32, 36)));
    expect(toHex(kb.serverWriteIv)).toBe(toHex(raw.subarray(36, 40)));
  });
});
