/** @tips/dtls — DTLS 1.2 (RFC 6347) with the RFC 7925 profile, written over node:crypto, on a native UDP socket (native.ts; node:dgram without it). */
export { createDtlsServer, type DtlsServer, type DtlsServerOptions, type DtlsServerStats } from './server.ts';
export { createDtlsClient, type DtlsClient, type DtlsClientOptions } from './client.ts';
export { DtlsError, type DtlsErrorCode, AlertDescription } from './errors.ts';
export { CipherSuite } from './handshake.ts';
export type { DatagramPeer, DatagramTransport, PeerIdentity } from './transport-types.ts';
