import { describe, expect, it } from 'vitest';
import { CookieJar } from './cookie.ts';
import type { ClientHello } from './handshake.ts';

const hello = (random = 1): ClientHello => ({
  clientVersion: 0xfefd,
  random: new Uint8Array(32).fill(random),
  sessionId: new Uint8Array(0),
  cookie: new Uint8Array(0),
  cipherSuites: [0xc0a8],
  compressionMethods: Uint8Array.of(0),
  extensions: [],
});

describe('S13 DTLS stateless cookie (RFC 6347 §4.2.1)', () => {
  it('is bound to the address, port and ClientHello, and survives exactly one secret rotation', () => {
    let now = 0;
    const jar = new CookieJar({ rotateMs: 1000, now: () => now });
    const cookie = jar.issue('10.0.0.1', 5000, hello());
    expect(jar.valid('10.0.0.1', 5000, { ...hello(), cookie })).toBe(true);
    expect(jar.valid('10.0.0.2', 5000, { ...hello(), cookie })).toBe(false);
    expect(jar.valid('10.0.0.1', 5001, { ...hello(), cookie })).toBe(false);
    expect(jar.valid('10.0.0.1', 5000, { ...hello(2), cookie })).toBe(false);
    expect(jar.valid('10.0.0.1', 5000, { ...hello(), cipherSuites: [0xc0ae], cookie })).toBe(false);
    now = 1500; // one rotation: the previous secret still counts
    expect(jar.valid('10.0.0.1', 5000, { ...hello(), cookie })).toBe(true);
    now = 3000; // two rotations: gone
    expect(jar.valid('10.0.0.1', 5000, { ...hello(), cookie })).toBe(false);
    expect(jar.valid('10.0.0.1', 5000, hello())).toBe(false);
  });
});
