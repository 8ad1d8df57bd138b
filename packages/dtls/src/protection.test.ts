import { createCipheriv } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { DtlsError } from './errors.ts';
import { openRecord, sealRecord } from './protection.ts';
import { ContentType, DTLS_1_2 } from './record.ts';
import { ReplayWindow } from './replay.ts';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

describe('S13 DTLS record protection (AES-128-CCM-8, RFC 6655)', () => {
  it('node:crypto CCM with an 8-byte tag is RFC 3610 CCM (packet vector #1)', () => {
    const c = createCipheriv('aes-128-ccm', hex('c0c1c2c3c4c5c6c7c8c9cacbcccdcecf'), hex('00000003020100a0a1a2a3a4a5'), { authTagLength: 8 });
    const pt = hex('08090a0b0c0d0e0f101112131415161718191a1b1c1d1e');
    c.setAAD(hex('0001020304050607'), { plaintextLength: pt.length });
    const ct = Buffer.concat([c.update(pt), c.final(), c.getAuthTag()]);
    expect(ct.toString('hex')).toBe('588c979a61c663d2f066d0c2c0f989806d5f6b61dac38417e8d12cfdf926e0');
  });

  const keys = { key: hex('000102030405060708090a0b0c0d0e0f'), salt: hex('a0a1a2a3') };
  const head = { type: ContentType.application_data, version: DTLS_1_2, epoch: 1, sequence: 7 };

  it('seals as explicit nonce (epoch ‖ seq) ‖ ciphertext ‖ tag and opens again', () => {
    const pt = new TextEncoder().encode('hello coap');
    const f = sealRecord(keys, head, pt);
    expect(f.length).toBe(8 + pt.length + 8);
    expect(Buffer.from(f.subarray(0, 8)).toString('hex')).toBe('0001000000000007');
    expect(new TextDecoder().decode(openRecord(keys, { ...head, fragment: f }))).toBe('hello coap');
  });

  it('refuses a flipped bit, a changed header (AAD) and a short record with bad_record_mac', () => {
    const f = sealRecord(keys, head, new Uint8Array(20));
    const flipped = Uint8Array.from(f);
    flipped[10] = (flipped[10] as number) ^ 1;
    const err = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        return (e as DtlsError).code;
      }
      return 'accepted';
    };
    expect(err(() => openRecord(keys, { ...head, fragment: flipped }))).toBe('bad_record_mac');
    expect(err(() => openRecord(keys, { ...head, type: ContentType.handshake, fragment: f }))).toBe('bad_record_mac');
    expect(err(() => openRecord(keys, { ...head, sequence: 8, fragment: f }))).toBe('bad_record_mac');
    expect(err(() => openRecord(keys, { ...head, fragment: f.subarray(0, 15) }))).toBe('bad_record_mac');
    expect(err(() => openRecord(keys, { ...head, fragment: f }))).toBe('accepted');
  });
});

describe('S13 DTLS anti-replay window (RFC 6347 §4.1.2.6)', () => {
  it('accepts each sequence number once, out of order inside 64, never below the window', () => {
    const w = new ReplayWindow();
    for (const s of [5, 3, 4, 100]) {
      expect(w.check(s)).toBe(true);
      w.accept(s);
    }
    expect(w.check(5)).toBe(false);
    expect(w.check(100)).toBe(false);
    expect(w.check(37)).toBe(true); // 100-63
    expect(w.check(36)).toBe(false); // 100-64: left the window
    w.accept(37);
    expect(w.check(37)).toBe(false);
    expect(w.check(99)).toBe(true);
    w.accept(2 ** 40);
    expect(w.check(100)).toBe(false);
    expect(w.check(2 ** 40 + 1)).toBe(true);
  });
});
