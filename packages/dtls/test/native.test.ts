/**
 * The native socket's Block2 fast path (native/tips_dtls.c) against the JS path it stands in for: the same
 * requests on a native server and on a node:dgram one (TIPS_DTLS_NATIVE's fallback) get the same answers
 * byte for byte; replayed, tampered, out-of-deadline and cancelled requests go to JS, which refuses or
 * answers exactly as before; the write sequence shared by C and JS never repeats.
 */
import { randomBytes } from 'node:crypto';
import { type Socket, createSocket } from 'node:dgram';
import { CoapServer, encodeMessage } from '@tips/coap';
import fc from 'fast-check';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Connection } from '../src/connection.ts';
import { type DtlsServer, createDtlsServer } from '../src/index.ts';
import { loadNative } from '../src/native.ts';
import { decodeRecords } from '../src/record.ts';

const logger = pino({ level: 'silent' });
const PSK = randomBytes(16);
const IDENTITY = 'metal-9.1';
const BLOB = randomBytes(20 * 1024 + 100); // 21 blocks of 1 KiB, the last one short
const ETAG = Uint8Array.of(0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4);
const OPT = { URI_PATH: 11, URI_QUERY: 15, ACCEPT: 17, BLOCK2: 23, SIZE2: 28, OBSERVE: 6, ETAG: 4 };
const te = new TextEncoder();

const native = loadNative();

interface Side {
  server: DtlsServer;
  coap: CoapServer;
  port: number;
  handlerCalls: number;
  until: () => number | undefined;
}

async function side(useNative: boolean): Promise<Side> {
  const server = await createDtlsServer({ host: '127.0.0.1', port: 0, logger, native: useNative, psk: async (id) => (id === IDENTITY ? PSK : undefined) });
  const coap = new CoapServer(server, { logger });
  const s: Side = { server, coap, port: server.address().port, handlerCalls: 0, until: () => Date.now() + 60_000 };
  coap.route('GET', '/blob', async () => {
    s.handlerCalls++;
    return {
      code: '2.05',
      contentFormat: 42,
      etag: ETAG,
      maxAge: 300,
      payload: { size: BLOB.length, read: (o: number, l: number) => BLOB.subarray(o, o + l), whole: () => BLOB },
      offloadUntil: () => s.until(),
    };
  });
  coap.route('GET', '/other', async () => ({ code: '2.05', payload: te.encode('js answers this') }));
  return s;
}

/** A DTLS client over our own socket: every datagram it sends is kept, so a test can replay or mutate one. */
interface RawClient {
  sock: Socket;
  conn: Connection;
  sent: Uint8Array[];
  /** plaintexts the client's Connection accepted (authentic, new) */
  received: Uint8Array[];
  /** every datagram that arrived, as sent by the server */
  raw: Uint8Array[];
  hold: boolean;
  held: Uint8Array[];
}

async function rawClient(port: number): Promise<RawClient> {
  const sock = createSocket('udp4');
  await new Promise<void>((resolve) => sock.connect(port, '127.0.0.1', () => resolve()));
  const c = { sock, sent: [], received: [], raw: [], hold: false, held: [] } as unknown as RawClient;
  let ready: () => void = () => {};
  const established = new Promise<void>((r) => {
    ready = r;
  });
  c.conn = new Connection(
    { role: 'client', psk: { identity: IDENTITY, key: PSK }, handshakeTimeoutMs: 10_000 },
    {
      send: (d) => {
        if (c.hold) {
          c.held.push(d);
          return;
        }
        c.sent.push(d);
        sock.send(d);
      },
      data: (d) => c.received.push(Uint8Array.from(d)),
      established: () => ready(),
      closed: () => {},
    },
  );
  sock.on('message', (m) => {
    c.raw.push(Uint8Array.from(m));
    void c.conn.receive(m);
  });
  c.conn.start();
  await established;
  return c;
}

function get(mid: number, token: Uint8Array, num: number, szx = 6, extra: { number: number; value: Uint8Array }[] = [], path = 'blob'): Uint8Array {
  const options = [{ number: OPT.URI_PATH, value: te.encode(path) }, ...extra];
  if (num >= 0) options.push({ number: OPT.BLOCK2, value: num * 16 + szx < 256 ? Uint8Array.of(num * 16 + szx) : Uint8Array.of((num * 16 + szx) >> 8, (num * 16 + szx) & 0xff) });
  return encodeMessage({ type: 0, code: 1, messageId: mid, token, options: options.sort((a, b) => a.number - b.number), payload: new Uint8Array(0) });
}

const until = async (what: string, f: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
};
const quiet = (ms = 150) => new Promise((r) => setTimeout(r, ms));

/** Sends one request and waits for its answer (the next plaintext). */
async function ask(c: RawClient, req: Uint8Array): Promise<Uint8Array> {
  const n = c.received.length;
  c.conn.sendDataNow(req);
  await until('an answer', () => c.received.length > n);
  return c.received[n] as Uint8Array;
}

const stats = (s: Side) => s.server.stats().native as NonNullable<ReturnType<DtlsServer['stats']>['native']>;
const sequences = (raw: Uint8Array[]) => raw.flatMap((d) => decodeRecords(d).filter((r) => r.epoch === 1).map((r) => r.sequence));

describe('Z5/S13 native Block2 fast path (packages/dtls/native) against the JS path', () => {
  let fast: Side;
  let js: Side;
  beforeAll(async () => {
    // Built by `npm install` (node-gyp); a missing addon is a failure here, not a skip.
    expect(native.why, 'build it: npm run install --workspace @tips/dtls (node-gyp; npm test does it when missing)').toBeUndefined();
    fast = await side(true);
    js = await side(false);
  });
  afterAll(async () => {
    await fast.coap.close();
    await js.coap.close();
  });

  it('serves the continuation blocks in C with answers byte-identical to the JS path (szx 6 and 4, Uri-Query and Accept, duplicate CON)', async () => {
    expect(fast.server.stats().socket).toBe('native');
    expect(js.server.stats().socket).toBe('dgram');
    const a = await rawClient(fast.port);
    const b = await rawClient(js.port);
    const served0 = stats(fast).blocksServed;
    const calls0 = fast.handlerCalls;
    const requests: Uint8Array[] = [];
    const extra = [
      { number: OPT.URI_QUERY, value: te.encode('v=1') },
      { number: OPT.ACCEPT, value: Uint8Array.of(42) },
    ];
    // 1 KiB blocks 0..20 (0 and the last through JS), then 256-byte blocks from another transfer, with options.
    for (let n = 0; n <= 20; n++) requests.push(get(0x100 + n, Uint8Array.of(7, n), n));
    requests.push(get(0x200, Uint8Array.of(9), 4, 4, extra));
    for (let n = 5; n < 12; n++) requests.push(get(0x200 + n, randomBytes(8), n, 4, extra));
    requests.push(requests[requests.length - 3] as Uint8Array); // a duplicate CON (RFC 7252 §4.5): answered again, the same bytes
    for (const req of requests) {
      const x = await ask(a, req);
      const y = await ask(b, req);
      expect(Buffer.from(x).toString('hex')).toBe(Buffer.from(y).toString('hex'));
    }
    // C answered all but the first block of each transfer and the last 1 KiB block; JS none on the dgram side.
    expect(stats(fast).blocksServed - served0).toBe(requests.length - 3);
    expect(fast.handlerCalls - calls0).toBe(3);
    expect(js.handlerCalls).toBeGreaterThanOrEqual(requests.length - 1);
    a.sock.close();
    b.sock.close();
  });

  it('a replayed record is refused by C and by JS; a tampered one goes to JS which refuses it; nothing is committed for them', async () => {
    const c = await rawClient(fast.port);
    await ask(c, get(1, Uint8Array.of(1), 0)); // JS answers block 0 and offloads the rest
    const served = stats(fast).blocksServed;
    await ask(c, get(2, Uint8Array.of(2), 1));
    expect(stats(fast).blocksServed).toBe(served + 1);
    const answered = c.sent.length;
    const toJs = stats(fast).datagramsToJs;
    const replies = c.raw.length;
    // Replays: the record C answered, and the record JS answered (block 0).
    c.sock.send(c.sent[answered - 1] as Uint8Array);
    c.sock.send(c.sent[answered - 2] as Uint8Array);
    await until('both replays passed to JS', () => stats(fast).datagramsToJs === toJs + 2);
    await quiet();
    expect(c.raw.length).toBe(replies);
    expect(stats(fast).blocksServed).toBe(served + 1);
    // A tampered record (one ciphertext bit) of a fresh request: to JS, refused; the untampered one still goes.
    c.hold = true;
    c.conn.sendDataNow(get(3, Uint8Array.of(3), 2));
    c.hold = false;
    const good = c.held.pop() as Uint8Array;
    const bad = Uint8Array.from(good);
    bad[30] = (bad[30] as number) ^ 1;
    const notAuth = stats(fast).passedNotAuthentic;
    c.sock.send(bad);
    await until('the tampered record passed to JS', () => stats(fast).passedNotAuthentic === notAuth + 1);
    await quiet();
    expect(c.raw.length).toBe(replies);
    const n = c.received.length;
    c.sock.send(good);
    await until('the genuine record answered', () => c.received.length === n + 1);
    expect(stats(fast).blocksServed).toBe(served + 2);
    // After cancelOffloads the same replay goes to JS, which refuses it too.
    fast.coap.cancelOffloads();
    c.sock.send(good);
    await quiet();
    expect(c.received.length).toBe(n + 1);
    c.sock.close();
  });

  it('a passed deadline or a cancellation sends the next block through the handler; session end drops the offload', async () => {
    const c = await rawClient(fast.port);
    fast.until = () => Date.now() + 120;
    await ask(c, get(10, Uint8Array.of(1), 0));
    const calls = fast.handlerCalls;
    const expired = stats(fast).offloadsExpired;
    await ask(c, get(11, Uint8Array.of(1), 1));
    expect(fast.handlerCalls).toBe(calls); // C
    await quiet(200);
    await ask(c, get(12, Uint8Array.of(1), 2));
    expect(fast.handlerCalls).toBe(calls + 1); // deadline passed: JS (and a new offload)
    expect(stats(fast).offloadsExpired).toBe(expired + 1);
    fast.until = () => Date.now() + 60_000;
    await ask(c, get(13, Uint8Array.of(1), 3)); // JS again (the offload it set expires at +120 ms), sets a long one
    await ask(c, get(14, Uint8Array.of(1), 4));
    const afterC = fast.handlerCalls;
    fast.coap.cancelOffloads();
    expect(stats(fast).offloadsActive).toBe(0);
    await ask(c, get(15, Uint8Array.of(1), 5));
    expect(fast.handlerCalls).toBe(afterC + 1); // cancelled: JS
    // A handler that says "no longer" (undefined: a revocation came) gets no offload at all.
    fast.until = () => undefined;
    fast.coap.cancelOffloads();
    await ask(c, get(16, Uint8Array.of(1), 6));
    await ask(c, get(17, Uint8Array.of(1), 7));
    expect(fast.handlerCalls).toBe(afterC + 3);
    fast.until = () => Date.now() + 60_000;
    await ask(c, get(18, Uint8Array.of(1), 8));
    expect(stats(fast).offloadsActive).toBe(1);
    const dropped = stats(fast).offloadsDropped;
    c.conn.close(); // close_notify: the session ends, and its offload with it
    await until('the offload dropped', () => stats(fast).offloadsDropped === dropped + 1);
    expect(stats(fast).offloadsActive).toBe(0);
    c.sock.close();
  });

  it('C and JS sends share one write sequence: interleaved answers all decrypt, numbers never repeat', async () => {
    const c = await rawClient(fast.port);
    await ask(c, get(20, Uint8Array.of(1), 0));
    const served = stats(fast).blocksServed;
    for (let n = 1; n < 15; n++) {
      await ask(c, get(20 + n, Uint8Array.of(1), n)); // C
      if (n % 3 === 0) await ask(c, get(100 + n, Uint8Array.of(2), -1, 6, [], 'other')); // JS, between
    }
    expect(stats(fast).blocksServed).toBe(served + 14);
    const seqs = sequences(c.raw);
    expect(new Set(seqs).size).toBe(seqs.length);
    expect([...seqs].sort((x, y) => x - y)).toEqual(seqs);
    // Every answer decrypted and was new to the client's replay window (flights of the handshake aside).
    expect(c.received.length).toBe(c.raw.filter((d) => decodeRecords(d)[0]?.epoch === 1).length);
    expect(c.received.length).toBe(1 + 14 + 4);
    c.sock.close();
  });

  it('fuzz: random and mutated datagrams on the fast path answer nothing and crash nothing; the session keeps working', async () => {
    const c = await rawClient(fast.port);
    await ask(c, get(30, Uint8Array.of(1), 0));
    c.hold = true;
    for (let n = 1; n < 6; n++) c.conn.sendDataNow(get(30 + n, Uint8Array.of(1), n));
    c.hold = false;
    const samples = c.held.splice(0);
    const replies = c.raw.length;
    const served = stats(fast).blocksServed;
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ minLength: 0, maxLength: 1200 }),
          fc.record({ i: fc.nat(samples.length - 1), at: fc.nat(200), bit: fc.nat(7) }).map(({ i, at, bit }) => {
            const d = Uint8Array.from(samples[i] as Uint8Array);
            d[at % d.length] = (d[at % d.length] as number) ^ (1 << bit);
            return d;
          }),
          fc.record({ i: fc.nat(samples.length - 1), cut: fc.nat(80) }).map(({ i, cut }) => (samples[i] as Uint8Array).subarray(0, Math.max(0, (samples[i] as Uint8Array).length - 1 - cut))),
          fc.record({ i: fc.nat(samples.length - 1), tail: fc.uint8Array({ minLength: 1, maxLength: 40 }) }).map(({ i, tail }) => Buffer.concat([samples[i] as Uint8Array, tail])),
        ),
        (d) => {
          c.sock.send(d);
        },
      ),
      { numRuns: 400 },
    );
    await quiet(300);
    expect(c.raw.length).toBe(replies);
    expect(stats(fast).blocksServed).toBe(served);
    // The genuine requests, held back until now, are still new and answered in C.
    for (const d of samples) c.sock.send(d);
    await until('the held requests answered', () => c.received.length >= 6);
    expect(stats(fast).blocksServed).toBe(served + 5);
    c.sock.close();
  });
});
