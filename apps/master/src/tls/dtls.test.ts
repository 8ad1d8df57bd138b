import { createPrivateKey } from 'node:crypto';
import { createDtlsClient, DtlsError } from '@tips/dtls';
import { generateKeyPair, issueCertificate, privateKeyToPem, serialFrom } from '@tips/trust';
import pino from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { caPem, createEphemeralCa, issueServerCertificate } from '../domains/enrollment/ca.ts';
import { systemRandom } from '../ports.ts';
import { installDtlsMetrics, listenDtls } from './dtls.ts';

describe('S13 the master CoAP port transport: DTLS with the HTTPS server certificate and the metal CA', () => {
  it('takes the P-256 server certificate, anchors metal chains at the TIPS CA, asks enrollment about each metal, and counts in /metrics', async () => {
    const now = new Date();
    const ca = await createEphemeralCa(now, systemRandom);
    const server = await issueServerCertificate(ca, { now, random: systemRandom, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    const keys = await generateKeyPair();
    const metalCert = await issueCertificate(ca.intermediate, {
      identity: { kind: 'metal', id: 'mtl_x' },
      publicKey: keys.publicKey,
      serial: serialFrom(systemRandom.bytes(16)),
      notBefore: new Date(now.getTime() - 60_000),
      notAfter: new Date(now.getTime() + 86_400_000),
      usage: 'client',
    });
    const leaf = new Uint8Array(metalCert.rawData);
    const asked: Uint8Array[] = [];
    let revoked = false;
    const pems = caPem(ca);
    const dtls = await listenDtls({
      host: '127.0.0.1',
      port: 0,
      logger: pino({ level: 'silent' }),
      certPem: server.chainPem,
      keyPem: server.keyPem,
      clientCaPem: pems.rootPem + pems.intermediatePem,
      pskLookup: async (id) => (id === 'mtl_x.1' ? new Uint8Array(16).fill(7) : undefined),
      authenticateMetal: async (der) => {
        asked.push(der);
        if (revoked) throw new Error('certificate_revoked');
      },
    });
    const registry = new Registry();
    installDtlsMetrics(registry, dtls);
    try {
      const port = dtls.address().port;
      const rootDer = new Uint8Array(ca.root.rawData);
      const certificate = { key: createPrivateKey(await privateKeyToPem(keys.privateKey)), chain: [leaf] };
      const c = await createDtlsClient({ host: '127.0.0.1', port, certificate, trustAnchors: [rootDer] });
      expect(Buffer.from(asked[0] as Uint8Array).equals(Buffer.from(leaf))).toBe(true);
      await c.close();
      const p = await createDtlsClient({ host: '127.0.0.1', port, psk: { identity: 'mtl_x.1', key: new Uint8Array(16).fill(7) } });
      await p.close();
      revoked = true;
      await expect(createDtlsClient({ host: '127.0.0.1', port, certificate, trustAnchors: [rootDer] })).rejects.toBeInstanceOf(DtlsError);
      const text = await registry.metrics();
      expect(text).toMatch(/tips_master_dtls_hello_verify_requests_total 3/);
      expect(text).toMatch(/tips_master_dtls_handshakes_refused_total 1/);
      expect(text).toMatch(/tips_master_dtls_handshakes_in_flight 0/);
      expect(text).toMatch(/tips_master_dtls_native_datagrams_to_js_total [1-9]/); // the native socket serves the port
    } finally {
      await dtls.close();
    }
  });
});
