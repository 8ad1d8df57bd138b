// The gateway's TLS identity (S6 S11 T11) against an in-test HTTPS master stand-in that issues
// certificates from a real CA (@tips/trust) and checks the client certificate on every request and
// on the channel upgrade. Unit scope only: e2e/gateway-mtls.test.ts runs the real master.
import { createPublicKey, type KeyObject, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import {
  type CaKeyPair,
  createIntermediateCa,
  createRootCa,
  generateKeyPair,
  issueCertificate,
  privateKeyToPem,
  serialFrom,
  x509,
} from '@tips/trust';
import pino from 'pino';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { createMetrics } from '../status/metrics.ts';
import { Channel } from './channel.ts';
import { enrollGateway, MasterClient } from './client.ts';
import { CA_FILE, CERT_FILE, generateGatewayKey, IdentityError, KEY_FILE, loadIdentity, saveCertificate, saveIdentity } from './identity.ts';
import { renewIfDue } from './renewal.ts';
import { HEADER, publicKeyPem, verifyRequest } from './sign.ts';

const DAY = 86_400_000;
const GW = 'gwy_0000000000000000000000000a';
const rnd = (n: number) => crypto.getRandomValues(new Uint8Array(n));

interface Pki {
  rootPem: string;
  chainPem: string;
  intermediate: CaKeyPair;
  serverCert: string;
  serverKey: string;
}

async function makePki(name: string): Promise<Pki> {
  const now = Date.now();
  const root = await createRootCa({ commonName: `${name} root`, notBefore: new Date(now - 60_000), notAfter: new Date(now + 365 * DAY), serial: serialFrom(rnd(16)) });
  const intermediate = await createIntermediateCa(root, { commonName: `${name} intermediate`, notBefore: new Date(now - 60_000), notAfter: new Date(now + 300 * DAY), serial: serialFrom(rnd(16)) });
  const keys = await generateKeyPair();
  const server = await issueCertificate(intermediate, {
    identity: { kind: 'master', id: '' },
    publicKey: keys.publicKey,
    serial: serialFrom(rnd(16)),
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 30 * DAY),
    usage: 'server',
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
  });
  const rootPem = `${root.cert.toString('pem')}\n`;
  const intermediatePem = `${intermediate.cert.toString('pem')}\n`;
  return { rootPem, chainPem: intermediatePem + rootPem, intermediate, serverCert: `${server.toString('pem')}\n${intermediatePem}`, serverKey: await privateKeyToPem(keys.privateKey) };
}

/** Issues a gateway certificate for `key` (SPKI PEM) the way the master does. */
async function issueFor(pki: Pki, publicKey: string, lifetimeMs = 7 * DAY): Promise<string> {
  const spki = createPublicKey(publicKey).export({ format: 'der', type: 'spki' });
  const now = Date.now();
  const cert = await issueCertificate(pki.intermediate, {
    identity: { kind: 'gateway', id: GW },
    publicKey: new x509.PublicKey(new Uint8Array(spki)),
    serial: serialFrom(rnd(16)),
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + lifetimeMs),
    usage: 'client',
  });
  return `${cert.toString('pem')}\n`;
}

/** An HTTPS master stand-in: enrolls, then wants a verified client certificate plus a valid signature on every request and upgrade. */
class TlsStandIn {
  server: Server;
  wss = new WebSocketServer({ noServer: true });
  publicKey: KeyObject | undefined;
  /** SAN URIs of the client certificate each authenticated request presented. */
  seen: string[] = [];
  refused = 0;

  constructor(private readonly pki: Pki) {
    this.server = createServer({ cert: pki.serverCert, key: pki.serverKey, ca: pki.chainPem, requestCert: true, rejectUnauthorized: false }, (req, res) => {
      let body = '';
      req.on('data', (d) => {
        body += d;
      });
      req.on('end', async () => {
        const send = (status: number, json?: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(json === undefined ? undefined : JSON.stringify(json));
        if (req.url === '/api/gateway/v1/enroll') {
          const j = JSON.parse(body);
          this.publicKey = createPublicKey(j.publicKey);
          return send(201, { gatewayId: GW, certificate: await issueFor(this.pki, j.publicKey), caChain: this.pki.chainPem, notAfter: new Date(Date.now() + 7 * DAY).toISOString() });
        }
        if (!this.authentic(req, body)) {
          this.refused++;
          return send(401, { error: { code: 'gateway_auth_failed', message: 'no' } });
        }
        if (req.url === '/api/gateway/v1/certificate') {
          return send(200, { certificate: await issueFor(this.pki, this.publicKey!.export({ format: 'pem', type: 'spki' }).toString()), caChain: this.pki.chainPem, notAfter: 'later' });
        }
        send(204);
      });
    });
    this.server.on('upgrade', (req, socket, head) => {
      if (!this.authentic(req, '')) {
        this.refused++;
        socket.end('HTTP/1.1 401 Unauthorized\r\n\r\n');
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => ws.on('message', () => {}));
    });
  }

  /** A verified client certificate naming the gateway, and a signature by the enrolled key. */
  authentic(req: IncomingMessage, body: string): boolean {
    const socket = req.socket as TLSSocket;
    const peer = socket.getPeerCertificate();
    if (!socket.authorized || !peer?.raw) return false;
    const san = new X509Certificate(peer.raw).subjectAltName ?? '';
    const h = (n: string) => req.headers[n] as string | undefined;
    if (!this.publicKey || h(HEADER.gateway) !== GW) return false;
    const ok = verifyRequest(
      this.publicKey,
      { method: req.method!, pathWithQuery: req.url!, timestamp: Number(h(HEADER.timestamp)), nonce: h(HEADER.nonce) ?? '', body: body === '' ? undefined : body },
      h(HEADER.signature) ?? '',
    );
    if (ok) this.seen.push(san);
    return ok;
  }

  listen(): Promise<string> {
    return new Promise((r) => this.server.listen(0, '127.0.0.1', () => r(`https://127.0.0.1:${(this.server.address() as AddressInfo).port}`)));
  }
  close(): Promise<void> {
    for (const c of this.wss.clients) c.terminate();
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

let pki: Pki;
let other: Pki;
beforeAll(async () => {
  pki = await makePki('TIPS');
  other = await makePki('Mallory');
});

let dir: string;
let master: TlsStandIn;
let url: string;
const clients: MasterClient[] = [];
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tgw-mtls-'));
  master = new TlsStandIn(pki);
  url = await master.listen();
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await master.close();
  rmSync(dir, { recursive: true, force: true });
});

async function enrollHere(): Promise<KeyObject> {
  const key = generateGatewayKey();
  const r = await enrollGateway(url, { enrollmentToken: 'tge_x', publicKey: publicKeyPem(key) }, { caPem: pki.rootPem });
  saveIdentity(dir, { gatewayId: r.gatewayId, master: url, name: null, enrolledAt: new Date().toISOString(), key, tls: { certPem: r.certificate, caPem: r.caChain } });
  return key;
}

describe('S6 S11 T11 gateway mTLS uplink', () => {
  it('enroll stores gateway.crt and ca.pem (0644) beside gateway.key (0600), for its own key', async () => {
    await enrollHere();
    expect(statSync(join(dir, KEY_FILE)).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, CERT_FILE)).mode & 0o777).toBe(0o644);
    expect(statSync(join(dir, CA_FILE)).mode & 0o777).toBe(0o644);
    expect(readFileSync(join(dir, CA_FILE), 'utf8')).toBe(pki.chainPem);
    const id = loadIdentity(dir);
    expect(id.tls).toBeDefined();
    const cert = new X509Certificate(id.tls!.certPem);
    expect(cert.subjectAltName).toBe(`URI:urn:tips:gateway:${GW}`);
    expect(cert.checkPrivateKey(id.key)).toBe(true);
  });

  it('presents the certificate on every https request and on the wss channel, verifying the master against ca.pem', async () => {
    await enrollHere();
    const id = loadIdentity(dir);
    const client = new MasterClient(url, id.gatewayId, id.key, 5000, id.tls);
    clients.push(client);
    await client.putTable([]);
    await client.putTable([]);
    expect(master.seen).toEqual([`URI:urn:tips:gateway:${GW}`, `URI:urn:tips:gateway:${GW}`]);
    let connected = false;
    const channel = new Channel({
      connectInfo: () => client.channelHeaders(),
      onCommand: async () => {},
      onConnected: () => {
        connected = true;
      },
      log: pino({ level: 'silent' }),
      metrics: createMetrics(),
      backoff: { initialMs: 50, maxMs: 200 },
    });
    channel.start();
    const end = Date.now() + 5000;
    while (!connected && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    channel.stop();
    expect(connected).toBe(true);
    expect(master.seen).toHaveLength(3);
    expect(master.refused).toBe(0);
  });

  it('refuses to talk https without a certificate, and refuses a master whose certificate ca.pem does not verify', async () => {
    const key = await enrollHere();
    expect(() => new MasterClient(url, GW, key)).toThrow(/gateway.crt/);
    const id = loadIdentity(dir);
    const impostor = new TlsStandIn(other);
    const impostorUrl = await impostor.listen();
    try {
      const client = new MasterClient(impostorUrl, GW, key, 5000, id.tls);
      clients.push(client);
      await expect(client.putTable([])).rejects.toMatchObject({ code: 'master_unreachable' });
      await expect(enrollGateway(impostorUrl, { enrollmentToken: 'tge_x', publicKey: publicKeyPem(key) }, { caPem: pki.rootPem })).rejects.toMatchObject({ code: 'master_unreachable' });
      expect(impostor.seen).toEqual([]);
    } finally {
      await impostor.close();
    }
  });

  it('renews past half the lifetime, stores the new certificate, and refuses one for another key', async () => {
    const key = await enrollHere();
    const id = loadIdentity(dir);
    const client = new MasterClient(url, id.gatewayId, id.key, 5000, id.tls);
    clients.push(client);
    expect(await renewIfDue(client, dir, key, new Date())).toMatchObject({ renewed: false, reason: 'not_due' });
    const before = readFileSync(join(dir, CERT_FILE), 'utf8');
    expect(await renewIfDue(client, dir, key, new Date(Date.now() + 4 * DAY))).toMatchObject({ renewed: true });
    const after = readFileSync(join(dir, CERT_FILE), 'utf8');
    expect(after).not.toBe(before);
    expect(client.certificatePem).toBe(after);
    await client.putTable([]);
    expect(master.seen.at(-1)).toBe(`URI:urn:tips:gateway:${GW}`);
    const stranger = await issueFor(pki, publicKeyPem(generateGatewayKey()));
    expect(() => saveCertificate(dir, stranger, pki.chainPem, key)).toThrow(IdentityError);
    expect(readFileSync(join(dir, CERT_FILE), 'utf8')).toBe(after);
  });
});
