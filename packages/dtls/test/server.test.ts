import { createSocket } from 'node:dgram';
import { rmSync } from 'node:fs';
import fc from 'fast-check';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DtlsServer, createDtlsClient, createDtlsServer, type DatagramPeer, DtlsError } from '../src/index.ts';
import { HandshakeType, decodeHandshakeFragments, encodeClientHello, encodeHandshake } from '../src/handshake.ts';
import { ContentType, DTLS_1_2, decodeRecords, encodeRecord } from '../src/record.ts';
import { type TestPki, makeTestPki } from './pki.ts';

const logger = pino({ level: 'silent' });
const PSK = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
let pki: TestPki;

beforeAll(async () => {
  pki = await makeTestPki();
});
afterAll(() => rmSync(pki.dir, { recursive: true, force: true }));

async function echoServer(extra: Partial<Parameters<typeof createDtlsServer>[0]> = {}) {
  const revoked = new Set<string>();
  const closed: DatagramPeer[] = [];
  const server = await createDtlsServer({
    host: '127.0.0.1',
    port: 0,
    logger,
    psk: async (id) => (id === 'metal-1.1' ? PSK : undefined),
    certificate: { key: pki.server.key, chain: pki.server.chain },
    trustAnchors: [pki.rootDer],
    verifyPeer: async (chain) => {
      if (revoked.has(Buffer.from(chain[0] as Uint8Array).toString('hex'))) throw new Error('certificate revoked');
    },
    ...extra,
  });
  const seen: DatagramPeer[] = [];
  server.onDatagram((peer, data) => {
    seen.push(peer);
    void server.send(peer, data);
  });
  server.onPeerClosed((peer) => closed.push(peer));
  return { server, revoked, seen, closed, port: server.address().port };
}

function roundTrip(client: Awaited<ReturnType<typeof createDtlsClient>>, text: string): Promise<string> {
  return new Promise((resolve) => {
    client.onMessage((d) => resolve(new TextDecoder().decode(d)));
    void client.send(new TextEncoder().encode(text));
  });
}

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'accepted';
  } catch (e) {
    return e instanceof DtlsError ? e.code : `untyped: ${e}`;
  }
}

describe('S13 S2 DTLS server and client (ours against ours)', () => {
  it('PSK: handshake, echo, the peer identity is the PSK identity; resumption by session ID is abbreviated', async () => {
    const { server, seen, port } = await echoServer();
    try {
      const c = await createDtlsClient({ host: '127.0.0.1', port, psk: { identity: 'metal-1.1', key: PSK } });
      expect(await roundTrip(c, 'ping')).toBe('ping');
      expect(seen[0]?.identity).toEqual({ kind: 'psk', identity: 'metal-1.1' });
      expect(c.resumed).toBe(false);
      const saved = c.session();
      await c.close();
      const r = await createDtlsClient({ host: '127.0.0.1', port, psk: { identity: 'metal-1.1', key: PSK }, session: saved });
      expect(r.resumed).toBe(true);
      expect(await roundTrip(r, 'again')).toBe('again');
      expect(seen[1]?.identity).toEqual({ kind: 'psk', identity: 'metal-1.1' });
      expect(seen[1]?.key).not.toBe(seen[0]?.key);
      await r.close();
    } finally {
      await server.close();
    }
  });

  it('certificates: ECDHE-ECDSA with a client certificate from the trust anchor; the chain reaches the CoAP layer', async () => {
    const { server, seen, port } = await echoServer();
    try {
      const c = await createDtlsClient({ host: '127.0.0.1', port, certificate: { key: pki.client.key, chain: pki.client.chain }, trustAnchors: [pki.rootDer] });
      expect(await roundTrip(c, 'cert')).toBe('cert');
      const id = seen[0]?.identity;
      expect(id?.kind).toBe('certificate');
      expect(id?.kind === 'certificate' && Buffer.from(id.chain[0] as Uint8Array).equals(Buffer.from(pki.client.der))).toBe(true);
      await c.close();
    } finally {
      await server.close();
    }
  });

  it('refuses a wrong PSK, an unknown identity, a stranger CA, a revoked certificate and a server outside our anchors', async () => {
    const { server, revoked, seen, port } = await echoServer();
    try {
      const wrongKey = Buffer.from(PSK);
      wrongKey[0] = 0xff;
      expect(await refusal(createDtlsClient({ host: '127.0.0.1', port, psk: { identity: 'metal-1.1', key: wrongKey } }))).toBe('alert_received');
      expect(await refusal(createDtlsClient({ host: '127.0.0.1', port, psk: { identity: 'nobody', key: PSK } }))).toBe('alert_received');
      expect(
        await refusal(createDtlsClient({ host: '127.0.0.1', port, certificate: { key: pki.stranger.key, chain: pki.stranger.chain }, trustAnchors: [pki.rootDer] })),
      ).toBe('alert_received');
      revoked.add(Buffer.from(pki.client.der).toString('hex'));
      expect(
        await refusal(createDtlsClient({ host: '127.0.0.1', port, certificate: { key: pki.client.key, chain: pki.client.chain }, trustAnchors: [pki.rootDer] })),
      ).toBe('alert_received');
      // The client side checks the server too: a server chain outside the client's anchors is refused.
      expect(
        await refusal(
          createDtlsClient({ host: '127.0.0.1', port, certificate: { key: pki.client.key, chain: pki.client.chain }, trustAnchors: [pki.stranger.chain[1] as Uint8Array] }),
        ),
      ).toBe('unknown_ca');
      expect(seen).toHaveLength(0);
      // The client's fatal alert ends the server's half of the last handshake.
      await expect.poll(() => server.stats(), { timeout: 10_000 }).toMatchObject({ sessions: 0, handshakesInFlight: 0, handshakesRefused: 5 });
    } finally {
      await server.close();
    }
  });

  it('closes idle sessions and tells the CoAP layer (onPeerClosed); send to a closed peer is a typed error', async () => {
    const { server, seen, closed, port } = await echoServer({ sessionTimeoutMs: 300 });
    try {
      const c = await createDtlsClient({ host: '127.0.0.1', port, psk: { identity: 'metal-1.1', key: PSK } });
      expect(await roundTrip(c, 'x')).toBe('x');
      const peer = seen[0] as DatagramPeer;
      await expect.poll(() => closed.map((p) => p.key), { timeout: 10_000 }).toEqual([peer.key]);
      expect(server.stats().sessions).toBe(0);
      await expect(server.send(peer, Uint8Array.of(1))).rejects.toThrow(DtlsError);
      await c.close();
    } finally {
      await server.close();
    }
  });
});

function clientHelloDatagram(cookie: Uint8Array, random: number, messageSeq = 0): Uint8Array {
  const body = encodeClientHello({
    clientVersion: DTLS_1_2,
    random: new Uint8Array(32).fill(random),
    sessionId: new Uint8Array(0),
    cookie,
    cipherSuites: [0xc0a8],
    compressionMethods: Uint8Array.of(0),
    extensions: [],
  });
  return encodeRecord({ type: ContentType.handshake, version: DTLS_1_2, epoch: 0, sequence: messageSeq, fragment: encodeHandshake(HandshakeType.client_hello, messageSeq, body) });
}

async function udpSocket() {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  return s;
}

/** Sends a ClientHello and returns the cookie of the HelloVerifyRequest (a real round-trip). */
async function fetchCookie(s: ReturnType<typeof createSocket>, port: number, random: number): Promise<Uint8Array> {
  const reply = new Promise<Buffer>((r) => s.once('message', (m) => r(m)));
  s.send(clientHelloDatagram(new Uint8Array(0), random), port, '127.0.0.1');
  const m = await reply;
  const frag = decodeHandshakeFragments((decodeRecords(m)[0] as { fragment: Uint8Array }).fragment)[0];
  if (frag?.msgType !== HandshakeType.hello_verify_request) throw new Error('expected a HelloVerifyRequest');
  return frag.body.subarray(3);
}

describe('S13 T2 DTLS server under hostile datagrams', () => {
  it('garbage, truncated and mutated records from anywhere change nothing; the session keeps working', async () => {
    const { server, port, seen } = await echoServer();
    const c = await createDtlsClient({ host: '127.0.0.1', port, psk: { identity: 'metal-1.1', key: PSK } });
    const s = await udpSocket();
    try {
      expect(await roundTrip(c, 'before')).toBe('before');
      const before = server.stats();
      const valid = clientHelloDatagram(new Uint8Array(0), 3);
      fc.assert(
        fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }).map((edits) => {
          const m = Uint8Array.from(valid);
          for (const [i, v] of edits) m[i] = v;
          return m;
        })), (d) => {
          s.send(d, port, '127.0.0.1');
        }),
        { numRuns: 500 },
      );
      await new Promise((r) => setTimeout(r, 500));
      expect(server.stats()).toMatchObject({ sessions: before.sessions, handshakesInFlight: 0 });
      expect(await roundTrip(c, 'after')).toBe('after');
      expect(seen.map((p) => p.identity.kind)).toEqual(['psk', 'psk']);
    } finally {
      s.close();
      await c.close();
      await server.close();
    }
  });
});

describe('S13 DTLS record sequence numbers across the stateless cookie exchange (RFC 6347 §4.2.1)', () => {
  it('the HelloVerifyRequest echoes the ClientHello record sequence; the ServerHello flight continues after the second one', async () => {
    const { server, port } = await echoServer();
    const s = await udpSocket();
    try {
      const first = new Promise<Buffer>((r) => s.once('message', (m) => r(m)));
      s.send(clientHelloDatagram(new Uint8Array(0), 9, 0), port, '127.0.0.1');
      const hvr = decodeRecords(await first)[0];
      expect(hvr?.sequence).toBe(0);
      const cookie = decodeHandshakeFragments((hvr as { fragment: Uint8Array }).fragment)[0]?.body.subarray(3) as Uint8Array;
      const second = new Promise<Buffer>((r) => s.once('message', (m) => r(m)));
      s.send(clientHelloDatagram(cookie, 9, 1), port, '127.0.0.1');
      const flight = decodeRecords(await second);
      // A peer that saw sequence 0 in the HelloVerifyRequest would drop a ServerHello numbered 0 as a replay.
      expect(flight[0]?.sequence).toBe(1);
      expect(decodeHandshakeFragments((flight[0] as { fragment: Uint8Array }).fragment)[0]?.msgType).toBe(HandshakeType.server_hello);
    } finally {
      s.close();
      await server.close();
    }
  });
});

describe('S13 T2 DTLS denial-of-service limits', () => {
  it('a flood of ClientHellos from 200 sources without the cookie round-trip allocates no per-peer state', async () => {
    const { server, port } = await echoServer();
    const sockets = await Promise.all(Array.from({ length: 200 }, () => udpSocket()));
    try {
      // Half carry no cookie, half a forged one: neither may create a handshake entry.
      for (const [i, s] of sockets.entries()) s.send(clientHelloDatagram(i % 2 ? new Uint8Array(16).fill(i) : new Uint8Array(0), i), port, '127.0.0.1');
      await expect.poll(() => server.stats().helloVerifyRequestsSent, { timeout: 20_000 }).toBe(200);
      expect(server.stats()).toMatchObject({ handshakesInFlight: 0, sessions: 0, cachedSessions: 0 });
    } finally {
      for (const s of sockets) s.close();
      await server.close();
    }
  });

  it('after the cookie round-trip, handshakes in flight are capped (maxHandshakesInFlight)', async () => {
    const server: DtlsServer = (await echoServer({ maxHandshakesInFlight: 2 })).server;
    const port = server.address().port;
    const sockets = await Promise.all([udpSocket(), udpSocket(), udpSocket()]);
    try {
      for (const [i, s] of sockets.entries()) {
        const cookie = await fetchCookie(s, port, i + 1);
        s.send(clientHelloDatagram(cookie, i + 1, 1), port, '127.0.0.1');
        await expect.poll(() => server.stats().handshakesInFlight + server.stats().handshakesDropped, { timeout: 10_000 }).toBe(i + 1);
      }
      expect(server.stats()).toMatchObject({ handshakesInFlight: 2, handshakesDropped: 1, sessions: 0 });
    } finally {
      for (const s of sockets) s.close();
      await server.close();
    }
  });
});
