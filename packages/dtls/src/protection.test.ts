import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { DtlsError } from './errors.ts';
import { Ccm, openRecord, sealRecord } from './protection.ts';
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

  const ccm = (k: Ccm, n: string, a: string, p: string) => {
    const pt = hex(p);
    const out = new Uint8Array(pt.length + k.tagLength);
    k.encrypt(hex(n), hex(a), pt, out, 0);
    return Buffer.from(out).toString('hex');
  };

  it('our CCM (one AES-ECB keystream call, one AES-CBC MAC call per record) gives RFC 3610 packet vector #1 and NIST SP 800-38C examples 1-2', () => {
    const rfc = new Ccm(hex('c0c1c2c3c4c5c6c7c8c9cacbcccdcecf'), 8);
    expect(ccm(rfc, '00000003020100a0a1a2a3a4a5', '0001020304050607', '08090a0b0c0d0e0f101112131415161718191a1b1c1d1e')).toBe(
      '588c979a61c663d2f066d0c2c0f989806d5f6b61dac38417e8d12cfdf926e0',
    );
    expect(ccm(new Ccm(hex('404142434445464748494a4b4c4d4e4f'), 4), '10111213141516', '0001020304050607', '20212223')).toBe('7162015b4dac255d');
    expect(ccm(new Ccm(hex('404142434445464748494a4b4c4d4e4f'), 6), '1011121314151617', '000102030405060708090a0b0c0d0e0f', '202122232425262728292a2b2c2d2e2f')).toBe(
      'd2a1f0e051ea5f62081a7792073d593d1fc64fbfaccd',
    );
    // The same key object again after other messages: every MAC still starts from the zero IV.
    expect(ccm(rfc, '00000003020100a0a1a2a3a4a5', '0001020304050607', '08090a0b0c0d0e0f101112131415161718191a1b1c1d1e')).toBe(
      '588c979a61c663d2f066d0c2c0f989806d5f6b61dac38417e8d12cfdf926e0',
    );
  });

  it('agrees with node:crypto aes-128-ccm (OpenSSL) on random keys, nonces, AADs and lengths 1..2100, both ways, interleaved', () => {
    for (let round = 0; round < 300; round++) {
      const key = randomBytes(16);
      const tagLength = [4, 6, 8, 10, 12, 14, 16][round % 7] as number;
      const ours = new Ccm(key, tagLength);
      for (let j = 0; j < 3; j++) {
        const n = randomBytes(7 + ((round + j) % 7));
        const a = randomBytes((round * 7 + j) % 40);
        const p = randomBytes(1 + ((round * 131 + j * 17) % 2100));
        const c = createCipheriv('aes-128-ccm', key, n, { authTagLength: tagLength });
        c.setAAD(a, { plaintextLength: p.length });
        const want = Buffer.concat([c.update(p), c.final(), c.getAuthTag()]);
        const got = new Uint8Array(p.length + tagLength);
        ours.encrypt(n, a, p, got, 0);
        expect(Buffer.from(got).equals(want)).toBe(true);
        const opened = ours.decrypt(n, a, got.subarray(0, p.length), got.subarray(p.length));
        expect(opened && Buffer.from(opened).equals(p)).toBe(true);
        const d = createDecipheriv('aes-128-ccm', key, n, { authTagLength: tagLength });
        d.setAuthTag(got.subarray(p.length));
        d.setAAD(a, { plaintextLength: p.length });
        expect(Buffer.from(d.update(got.subarray(0, p.length))).equals(p)).toBe(true);
        const bad = Uint8Array.from(got);
        bad[(round * 13) % bad.length] = (bad[(round * 13) % bad.length] as number) ^ 0x80;
        expect(ours.decrypt(n, a, bad.subarray(0, p.length), bad.subarray(p.length))).toBeUndefined();
      }
    }
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

  it('matches a straightforward 64-bit model over random sequences (gaps, reorders, jumps past the window)', () => {
    class Model {
      top = -1;
      seen = new Set<number>();
      check(s: number) {
        return s > this.top || (this.top - s < 64 && !this.seen.has(s));
      }
      accept(s: number) {
        this.seen.add(s);
        if (s > this.top) this.top = s;
      }
    }
    let x = 12345;
    const rnd = () => {
      x = (x * 1103515245 + 12345) & 0x7fffffff;
      return x;
    };
    for (let run = 0; run < 50; run++) {
      const w = new ReplayWindow();
      const m = new Model();
      let base = run * 1000;
      for (let i = 0; i < 400; i++) {
        const r = rnd() % 100;
        base += r < 70 ? 1 : r < 85 ? 0 : r < 95 ? 33 : 70;
        const s = Math.max(0, base - (rnd() % 80));
        expect(w.check(s)).toBe(m.check(s));
        if (m.check(s)) {
          w.accept(s);
          m.accept(s);
        }
      }
    }
  });
});
