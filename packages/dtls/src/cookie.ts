/**
 * Stateless HelloVerifyRequest cookies (RFC 6347 §4.2.1): HMAC-SHA256 over the client's address, port and
 * ClientHello parameters under a secret that rotates; the previous secret is still accepted so a cookie
 * issued just before a rotation works. Nothing is stored per client.
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { ClientHello } from './handshake.ts';
import { Writer, equalBytes } from './wire.ts';

export const COOKIE_LENGTH = 16;

export interface CookieOptions {
  rotateMs?: number;
  now?: () => number;
  random?: (n: number) => Uint8Array;
}

export class CookieJar {
  private current: Uint8Array;
  private previous: Uint8Array;
  private rotatedAt: number;
  private readonly rotateMs: number;
  private readonly now: () => number;
  private readonly random: (n: number) => Uint8Array;

  constructor(opts: CookieOptions = {}) {
    this.rotateMs = opts.rotateMs ?? 60_000;
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? ((n) => randomBytes(n));
    this.current = this.random(32);
    this.previous = this.random(32);
    this.rotatedAt = this.now();
  }

  private rotate(): void {
    if (this.now() - this.rotatedAt < this.rotateMs) return;
    this.previous = this.current;
    this.current = this.random(32);
    this.rotatedAt = this.now();
  }

  private mac(secret: Uint8Array, address: string, port: number, hello: ClientHello): Uint8Array {
    const w = new Writer().vector(1, new TextEncoder().encode(address)).u16(port).u16(hello.clientVersion).bytes(hello.random);
    w.vector(1, hello.sessionId);
    for (const s of hello.cipherSuites) w.u16(s);
    w.vector(1, hello.compressionMethods);
    return createHmac('sha256', secret).update(w.finish()).digest().subarray(0, COOKIE_LENGTH);
  }

  issue(address: string, port: number, hello: ClientHello): Uint8Array {
    this.rotate();
    return this.mac(this.current, address, port, hello);
  }

  valid(address: string, port: number, hello: ClientHello): boolean {
    this.rotate();
    if (hello.cookie.length !== COOKIE_LENGTH) return false;
    return (
      equalBytes(hello.cookie, this.mac(this.current, address, port, hello)) ||
      equalBytes(hello.cookie, this.mac(this.previous, address, port, hello))
    );
  }
}
