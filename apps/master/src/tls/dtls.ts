import { createPrivateKey, X509Certificate } from 'node:crypto';
import { createDtlsServer, type DtlsServer, type DtlsServerStats } from '@tips/dtls';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';

export interface DtlsListenOptions {
  host: string;
  port: number;
  logger: Logger;
  /** The master's server certificate chain (leaf, then intermediate) and its P-256 key, PEM — the HTTPS one. */
  certPem: string;
  keyPem: string;
  /** CAs a metal certificate may chain to (root, intermediate, still-valid previous intermediates), PEM. */
  clientCaPem: string;
  /** The metal's PSK by identity (`constrained.pskLookup`); undefined = unknown or revoked. */
  pskLookup: (identity: string) => Promise<Uint8Array | undefined>;
  /** Throws unless the leaf is an active certificate of a metal this master issued (revocation, retirement, block). */
  authenticateMetal: (leafDer: Uint8Array) => Promise<unknown>;
}

function pemCertificates(pem: string): Uint8Array[] {
  return (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((p) => new Uint8Array(new X509Certificate(p).raw));
}

/**
 * The master's CoAP port transport (S13): DTLS 1.2 only, with the HTTPS server certificate (P-256 from the
 * TIPS CA, so the same one serves ECDHE-ECDSA) and the metal CA as trust anchors. The handshake refuses an
 * unknown/revoked PSK identity or a certificate the enrollment domain does not accept; the CoAP layer
 * checks the identity again on every request.
 */
export async function listenDtls(opts: DtlsListenOptions): Promise<DtlsServer> {
  const key = createPrivateKey(opts.keyPem);
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new Error('the master server key is not P-256: DTLS (RFC 7925) needs an ECDSA P-256 certificate');
  }
  return createDtlsServer({
    host: opts.host,
    port: opts.port,
    logger: opts.logger,
    psk: opts.pskLookup,
    certificate: { key, chain: pemCertificates(opts.certPem) },
    trustAnchors: pemCertificates(opts.clientCaPem),
    verifyPeer: async (chain) => {
      await opts.authenticateMetal(chain[0] as Uint8Array);
    },
  });
}

/** Prometheus view of the DTLS port: what the flood and limit defences are doing (S-D1, S-D2). */
export function installDtlsMetrics(registry: Registry, server: DtlsServer): void {
  const gauge = (name: string, help: string, read: (s: DtlsServerStats) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read(server.stats()));
      },
    });
  gauge('tips_master_dtls_sessions', 'Established DTLS sessions on the CoAP port', (s) => s.sessions);
  gauge('tips_master_dtls_handshakes_in_flight', 'DTLS handshakes past the cookie exchange and not finished', (s) => s.handshakesInFlight);
  const counter = (name: string, help: string, read: (s: DtlsServerStats) => number) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(read(server.stats()));
      },
    });
  counter('tips_master_dtls_hello_verify_requests_total', 'HelloVerifyRequests sent (ClientHellos without a valid cookie: no state kept)', (s) => s.helloVerifyRequestsSent);
  counter('tips_master_dtls_handshakes_refused_total', 'DTLS handshakes that failed (wrong or unknown PSK, untrusted or revoked certificate, timeout)', (s) => s.handshakesRefused);
  counter('tips_master_dtls_handshakes_dropped_total', 'ClientHellos with a valid cookie dropped because too many handshakes were in flight', (s) => s.handshakesDropped);
  // The native socket's Block2 fast path (packages/dtls/native; absent with node:dgram, TIPS_DTLS_NATIVE=0).
  const fast = (name: string, help: string, read: (n: NonNullable<DtlsServerStats['native']>) => number) => counter(name, help, (s) => (s.native ? read(s.native) : 0));
  fast('tips_master_coap_native_blocks_total', 'CoAP Block2 continuation blocks answered by the native fast path (without entering JS)', (n) => n.blocksServed);
  fast('tips_master_dtls_native_datagrams_to_js_total', 'Datagrams the native socket handed to the JS DTLS/CoAP code', (n) => n.datagramsToJs);
  fast('tips_master_coap_native_offloads_started_total', 'Block2 transfers handed to the native fast path (one per JS-answered block of an in-memory payload)', (n) => n.offloadsStarted);
  fast('tips_master_coap_native_offloads_cancelled_total', 'Native Block2 offloads ended by a revocation signal (the next block re-authenticates in JS)', (n) => n.offloadsCancelled);
  fast('tips_master_coap_native_offloads_expired_total', 'Native Block2 offloads that reached their deadline (the transfer re-check, at most 1 s)', (n) => n.offloadsExpired);
  fast('tips_master_coap_native_offloads_refused_total', 'Block2 offloads refused by the native bounds (count or pinned payload bytes)', (n) => n.offloadsRefused);
  gauge('tips_master_coap_native_offloads', 'Native Block2 offloads in force', (s) => s.native?.offloadsActive ?? 0);
}
