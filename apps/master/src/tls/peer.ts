import { TLSSocket } from 'node:tls';
import type { FastifyRequest } from 'fastify';

/** True when the request arrived over TLS (the master's HTTPS listener). */
export function isTls(req: FastifyRequest): boolean {
  return req.raw.socket instanceof TLSSocket;
}

/**
 * The client certificate of a TLS request, if the peer presented one, with whether its chain
 * verified against the CA the listener trusts (`requestCert: true, rejectUnauthorized: false`:
 * each API scope decides what a certificate, or its absence, means).
 */
export function peerCertificate(req: FastifyRequest): { authorized: boolean; der: Uint8Array } | undefined {
  const socket = req.raw.socket;
  if (!(socket instanceof TLSSocket)) return undefined;
  // Only the DER is needed: getPeerCertificate() would also decode every field and hash three fingerprints.
  const raw = socket.getPeerX509Certificate()?.raw;
  if (!raw || raw.length === 0) return undefined;
  return { authorized: socket.authorized, der: new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength) };
}
