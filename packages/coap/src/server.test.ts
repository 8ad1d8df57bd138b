import { createHash } from 'node:crypto';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { decodeBlock, encodeBlock } from './block.ts';
import { OPTION, TYPE_ACK, TYPE_CON, TYPE_NON, TYPE_RST } from './constants.ts';
import { type CoapMessage, type CoapOption, codeOf, codeString, decodeMessage, encodeMessage, encodeUint, optionUint } from './message.ts';
import { type MemoryPeer, memoryTransport } from './memory.ts';
import { CoapServer, type CoapServerOptions } from './server.ts';
import type { Block2Offload, DatagramTransport } from './transport.ts';

const logger = pino({ level: 'silent' });
const te = new TextEncoder();
const td = new TextDecoder();
const servers: CoapServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

/** A hand-driven client: sends exact messages, collects what comes back. */
class Client {
  readonly inbox: CoapMessage[] = [];
  private waiters: (() => void)[] = [];
  private mid = 100;
  constructor(readonly mp: MemoryPeer) {
    mp.onMessage((d) => {
      this.inbox.push(decodeMessage(d));
      for (const w of this.waiters.splice(0)) w();
    });
  }
  async next(timeoutMs = 3000): Promise<CoapMessage> {
    const deadline = Date.now() + timeoutMs;
    while (this.inbox.length === 0) {
      if (Date.now() > deadline) throw new Error('no message');
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
    return this.inbox.shift() as CoapMessage;
  }
  async quiet(ms = 150): Promise<void> {
    await new Promise((r) => setTimeout(r, ms));
    expect(this.inbox).toEqual([]);
  }
  sendRaw(b: Uint8Array): void {
    this.mp.send(b);
  }
  send(code: string, path: string, opts: { type?: 0 | 1 | 2 | 3; options?: CoapOption[]; payload?: Uint8Array; mid?: number; token?: Uint8Array } = {}): number {
    const mid = opts.mid ?? this.mid++;
    const options: CoapOption[] = [...(opts.options ?? [])];
    for (const seg of path.split('/').filter(Boolean)) options.push({ number: OPTION.URI_PATH, value: te.encode(seg) });
    options.sort((a, b) => a.number - b.number);
    this.mp.send(
      encodeMessage({ type: opts.type ?? TYPE_CON, code: codeOf(code), messageId: mid, token: opts.token ?? Uint8Array.of(mid & 0xff, 7), options, payload: opts.payload ?? new Uint8Array(0) }),
    );
    return mid;
  }
  async call(code: string, path: string, opts: Parameters<Client['send']>[2] = {}): Promise<CoapMessage> {
    this.send(code, path, opts);
    return this.next();
  }
}

function setup(opts: Partial<CoapServerOptions> = {}) {
  const transport = memoryTransport();
  const server = new CoapServer(transport, { logger, ...opts });
  servers.push(server);
  const client = () => new Client(transport.connect({ kind: 'psk', identity: 'm.1' }));
  return { transport, server, client };
}

const big = Uint8Array.from({ length: 5000 }, (_, i) => (i * 31) & 0xff);
const opt = (m: CoapMessage, n: number) => m.options.find((o) => o.number === n)?.value;

describe('S13 CoAP endpoint: messaging (RFC 7252 §4)', () => {
  it('answers a CON request with a piggybacked ACK carrying the token; a NON with a NON', async () => {
    const { server, client } = setup();
    server.route('GET', '/hello/:name', async (r) => ({ code: '2.05', contentFormat: 0, payload: te.encode(`hi ${r.params.name} ${r.query.map((q) => q.join('=')).join('&')}`) }));
    const c = client();
    const mid = c.send('0.01', 'hello/ana', { options: [{ number: OPTION.URI_QUERY, value: te.encode('a=1') }], token: Uint8Array.of(9, 9) });
    const r = await c.next();
    expect({ type: r.type, mid: r.messageId, code: codeString(r.code), token: [...r.token], body: td.decode(r.payload) }).toEqual({
      type: TYPE_ACK,
      mid,
      code: '2.05',
      token: [9, 9],
      body: 'hi ana a=1',
    });
    c.send('0.01', 'hello/bo', { type: TYPE_NON });
    const n = await c.next();
    expect(n.type).toBe(TYPE_NON);
    expect(td.decode(n.payload)).toBe('hi bo ');
  });

  it('runs the handler once for a retransmitted CON and resends the cached response', async () => {
    const { server, client } = setup();
    let runs = 0;
    server.route('POST', '/count', async () => ({ code: '2.04', payload: te.encode(String(++runs)) }));
    const c = client();
    c.send('0.02', 'count', { mid: 500 });
    const a = await c.next();
    c.send('0.02', 'count', { mid: 500 });
    const b = await c.next();
    expect(runs).toBe(1);
    expect(encodeMessage(b)).toEqual(encodeMessage(a));
    c.send('0.02', 'count', { mid: 501 });
    expect(td.decode((await c.next()).payload)).toBe('2');
  });

  it('RSTs a CON it cannot parse, ignores a malformed NON, and answers a CoAP ping with RST', async () => {
    const { client } = setup();
    const c = client();
    c.sendRaw(Uint8Array.of(0x40, 0x01, 0x12, 0x34, 0xff)); // CON, payload marker with no payload
    const r = await c.next();
    expect(r).toMatchObject({ type: TYPE_RST, code: 0, messageId: 0x1234 });
    c.sendRaw(Uint8Array.of(0x59, 0x01, 0x00, 0x01)); // NON, TKL 9
    c.sendRaw(Uint8Array.of(0x80, 0x01, 0x00, 0x02)); // version 2: silently ignored (§3)
    await c.quiet();
    c.sendRaw(Uint8Array.of(0x40, 0x00, 0x00, 0x03));
    expect(await c.next()).toMatchObject({ type: TYPE_RST, messageId: 3 });
  });

  it('4.04 unknown path, 4.05 known path wrong method, 4.02 unknown critical option, 5.05 proxying; handlers never see them', async () => {
    const { server, client } = setup();
    let runs = 0;
    server.route('GET', '/a', async () => ({ code: '2.05', payload: te.encode(String(++runs)) }));
    const c = client();
    expect(codeString((await c.call('0.01', 'b')).code)).toBe('4.04');
    expect(codeString((await c.call('0.04', 'a')).code)).toBe('4.05');
    expect(codeString((await c.call('0.01', 'a', { options: [{ number: OPTION.IF_MATCH, value: Uint8Array.of(1) }] })).code)).toBe('4.02');
    expect(codeString((await c.call('0.01', 'a', { options: [{ number: 9, value: Uint8Array.of(1) }] })).code)).toBe('4.02');
    expect(codeString((await c.call('0.01', 'a', { options: [{ number: OPTION.PROXY_URI, value: te.encode('coap://x/') }] })).code)).toBe('5.05');
    expect(codeString((await c.call('0.01', 'a', { options: [{ number: OPTION.BLOCK2, value: Uint8Array.of(7) }] })).code)).toBe('4.00');
    expect(runs).toBe(0);
    // an unknown elective option is ignored
    expect(codeString((await c.call('0.01', 'a', { options: [{ number: 2048, value: Uint8Array.of(1) }] })).code)).toBe('2.05');
  });

  it('a handler that throws is a 5.00 without its message', async () => {
    const { server, client } = setup();
    server.route('GET', '/boom', async () => {
      throw new Error('secret detail');
    });
    const r = await client().call('0.01', 'boom');
    expect(codeString(r.code)).toBe('5.00');
    expect(td.decode(r.payload)).not.toContain('secret');
  });
});

describe('S13 CoAP endpoint: Block2 and ETag (RFC 7959 §2.4)', () => {
  it('slices with the client size, up to the server maximum, with Size2 and the same ETag on every block', async () => {
    const { server, client } = setup({ maxBlockSize: 512 });
    const etag = Uint8Array.of(1, 2, 3, 4);
    server.route('GET', '/big', async () => ({
      code: '2.05',
      etag,
      payload: { size: big.length, read: async (o, l) => big.slice(o, o + l) },
    }));
    const c = client();
    // No Block2 in the request: the server picks its maximum (512).
    const first = await c.call('0.01', 'big');
    expect(decodeBlock(opt(first, OPTION.BLOCK2)!)).toEqual({ num: 0, more: true, szx: 5 });
    expect(optionUint(first, OPTION.SIZE2)).toBe(5000);
    expect(opt(first, OPTION.ETAG)).toEqual(etag);
    // The client asks for 64-byte blocks: all of them reassemble the resource.
    const chunks: Uint8Array[] = [];
    for (let num = 0; ; num++) {
      const r = await c.call('0.01', 'big', { options: [{ number: OPTION.BLOCK2, value: encodeBlock({ num, more: false, szx: 2 }) }] });
      const b = decodeBlock(opt(r, OPTION.BLOCK2)!);
      expect(b.num).toBe(num);
      expect(b.szx).toBe(2);
      expect(opt(r, OPTION.ETAG)).toEqual(etag);
      chunks.push(r.payload);
      if (!b.more) break;
    }
    expect(Buffer.concat(chunks)).toEqual(Buffer.from(big));
    // Asking for 1024 (above the server's 512): answered in 512, NUM rescaled (block 2 of 1024 = block 4 of 512).
    const r = await c.call('0.01', 'big', { options: [{ number: OPTION.BLOCK2, value: encodeBlock({ num: 2, more: false, szx: 6 }) }] });
    expect(decodeBlock(opt(r, OPTION.BLOCK2)!)).toEqual({ num: 4, more: true, szx: 5 });
    expect(r.payload).toEqual(big.slice(2048, 2560));
    // Beyond the end: 4.02.
    const beyond = await c.call('0.01', 'big', { options: [{ number: OPTION.BLOCK2, value: encodeBlock({ num: 100, more: false, szx: 6 }) }] });
    expect(codeString(beyond.code)).toBe('4.02');
  });

  it('a GET with the current ETag is 2.03 Valid without a body', async () => {
    const { server, client } = setup();
    server.route('GET', '/x', async () => ({ code: '2.05', etag: Uint8Array.of(7), payload: te.encode('body') }));
    const c = client();
    const v = await c.call('0.01', 'x', { options: [{ number: OPTION.ETAG, value: Uint8Array.of(7) }] });
    expect(codeString(v.code)).toBe('2.03');
    expect(v.payload.length).toBe(0);
    const f = await c.call('0.01', 'x', { options: [{ number: OPTION.ETAG, value: Uint8Array.of(8) }] });
    expect(codeString(f.code)).toBe('2.05');
  });
});

describe('Z5/S13 CoAP endpoint: Block2 offload to the transport (DatagramTransport.offloadBlock2)', () => {
  it('hands over only a CON GET block of an in-memory 2.05 with more to come, with the request options, the response prefix and the deadline', async () => {
    const { transport, server, client } = setup();
    const offloads: Block2Offload[] = [];
    (transport as DatagramTransport).offloadBlock2 = (_peer, o) => {
      offloads.push(o);
      return true;
    };
    let until: number | undefined = Date.now() + 60_000;
    let whole = true;
    const etag = Uint8Array.of(9, 8, 7);
    server.route('GET', '/big', async () => ({
      code: '2.05',
      etag,
      contentFormat: 42,
      payload: { size: big.length, read: (o, l) => big.subarray(o, o + l), whole: () => (whole ? big : undefined) },
      offloadUntil: () => until,
    }));
    server.route('GET', '/small', async () => ({ code: '2.05', payload: te.encode('x'), offloadUntil: () => until }));
    const c = client();
    const b2 = (num: number) => ({ number: OPTION.BLOCK2, value: encodeBlock({ num, more: false, szx: 6 }) });
    const accept = { number: OPTION.ACCEPT, value: encodeUint(42) };
    const r = await c.call('0.01', 'big', { options: [b2(1), accept] });
    expect(offloads).toHaveLength(1);
    const o = offloads[0] as Block2Offload;
    // The request's options without Block2, and the response's below Block2, each encoded as in a message.
    expect(decodeMessage(Uint8Array.from([0x40, 1, 0, 0, ...o.requestOptions])).options).toEqual([{ number: OPTION.URI_PATH, value: te.encode('big') }, accept]);
    expect(decodeMessage(Uint8Array.from([0x40, 0x45, 0, 0, ...o.responsePrefix])).options).toEqual(r.options.filter((x) => x.number < OPTION.BLOCK2));
    expect([o.responseLast, o.code, o.maxSzx, o.payload, o.deadline]).toEqual([OPTION.CONTENT_FORMAT, codeOf('2.05'), 6, big, until]);
    // Not handed over: the last block, a NON, an Observe or an ETag in the request, no Block2, a payload not in
    // memory, a handler that says no (undefined: a revocation came), a representation sent whole.
    await c.call('0.01', 'big', { options: [b2(4)] });
    await c.call('0.01', 'big', { type: TYPE_NON, options: [b2(1)] });
    await c.call('0.01', 'big', { options: [b2(1), { number: OPTION.OBSERVE, value: encodeUint(0) }] });
    await c.call('0.01', 'big', { options: [b2(1), { number: OPTION.ETAG, value: Uint8Array.of(1) }] });
    await c.call('0.01', 'big');
    whole = false;
    await c.call('0.01', 'big', { options: [b2(2)] });
    whole = true;
    until = undefined;
    await c.call('0.01', 'big', { options: [b2(2)] });
    until = Date.now() + 60_000;
    await c.call('0.01', 'small', { options: [b2(0)] });
    expect(offloads).toHaveLength(1);
    await c.call('0.01', 'big', { options: [b2(3)] });
    expect(offloads).toHaveLength(2);
  });
});

describe('S13 CoAP endpoint: Block1 (RFC 7959 §2.5)', () => {
  const upload = async (c: Client, body: Uint8Array, szx: number, extra: CoapOption[] = []) => {
    const size = 1 << (szx + 4);
    let last: CoapMessage | undefined;
    for (let num = 0; num * size < body.length; num++) {
      const chunk = body.subarray(num * size, (num + 1) * size);
      const more = (num + 1) * size < body.length;
      last = await c.call('0.03', 'up', { payload: chunk, options: [{ number: OPTION.BLOCK1, value: encodeBlock({ num, more, szx }) }, ...extra] });
      if (more) {
        expect(codeString(last.code)).toBe('2.31');
        expect(decodeBlock(opt(last, OPTION.BLOCK1)!)).toEqual({ num, more: true, szx });
      }
    }
    return last as CoapMessage;
  };

  it('reassembles the body, answers 2.31 Continue per block and runs the handler once with the whole body', async () => {
    const { server, client } = setup();
    const got: Uint8Array[] = [];
    server.route('PUT', '/up', async (r) => {
      got.push(r.payload);
      return { code: '2.04' };
    });
    const last = await upload(client(), big, 2);
    expect(codeString(last.code)).toBe('2.04');
    expect(decodeBlock(opt(last, OPTION.BLOCK1)!).more).toBe(false);
    expect(got).toHaveLength(1);
    expect(got[0]).toEqual(big);
  });

  it('4.08 for a block that does not continue a transfer; 4.13 with Size1 beyond the limit; the handler never runs', async () => {
    const { server, client } = setup({ maxBodySize: 1000 });
    let runs = 0;
    server.route('PUT', '/up', async () => ({ code: '2.04', payload: te.encode(String(++runs)) }));
    const c = client();
    const r = await c.call('0.03', 'up', { payload: new Uint8Array(64), options: [{ number: OPTION.BLOCK1, value: encodeBlock({ num: 3, more: true, szx: 2 }) }] });
    expect(codeString(r.code)).toBe('4.08');
    await c.call('0.03', 'up', { payload: new Uint8Array(64), options: [{ number: OPTION.BLOCK1, value: encodeBlock({ num: 0, more: true, szx: 2 }) }] });
    const skip = await c.call('0.03', 'up', { payload: new Uint8Array(10), options: [{ number: OPTION.BLOCK1, value: encodeBlock({ num: 2, more: false, szx: 2 }) }] });
    expect(codeString(skip.code)).toBe('4.08');
    const announced = await c.call('0.03', 'up', {
      payload: new Uint8Array(64),
      options: [
        { number: OPTION.BLOCK1, value: encodeBlock({ num: 0, more: true, szx: 2 }) },
        { number: OPTION.SIZE1, value: encodeUint(5000) },
      ],
    });
    expect(codeString(announced.code)).toBe('4.13');
    expect(optionUint(announced, OPTION.SIZE1)).toBe(1000);
    // Blocks within the limit continue; the block that crosses 1000 bytes gets 4.13 with Size1.
    let crossed: CoapMessage | undefined;
    for (let num = 0; num < 17; num++) {
      const r = await c.call('0.03', 'up', { payload: new Uint8Array(64), options: [{ number: OPTION.BLOCK1, value: encodeBlock({ num, more: true, szx: 2 }) }] });
      if (codeString(r.code) !== '2.31') {
        crossed = r;
        expect(num).toBe(15); // 15 × 64 = 960 ≤ 1000 < 1024
        break;
      }
    }
    expect(codeString(crossed!.code)).toBe('4.13');
    expect(optionUint(crossed!, OPTION.SIZE1)).toBe(1000);
    // and the transfer is forgotten: its next block does not continue anything
    const after = await c.call('0.03', 'up', { payload: new Uint8Array(10), options: [{ number: OPTION.BLOCK1, value: encodeBlock({ num: 16, more: false, szx: 2 }) }] });
    expect(codeString(after.code)).toBe('4.08');
    const wrongSize = await c.call('0.03', 'up', { payload: new Uint8Array(10), options: [{ number: OPTION.BLOCK1, value: encodeBlock({ num: 0, more: true, szx: 2 }) }] });
    expect(codeString(wrongSize.code)).toBe('4.00');
    expect(runs).toBe(0);
  });
});

describe('S13 CoAP endpoint: Observe (RFC 7641)', () => {
  it('registers, notifies only on change with increasing sequence numbers, and deregisters with Observe 1', async () => {
    const { server, client } = setup();
    let state = 'a';
    server.route('GET', '/work', async () => ({ code: '2.05', contentFormat: 0, payload: te.encode(state) }), { observable: true });
    const c = client();
    const tok = Uint8Array.of(0xaa);
    const r = await c.call('0.01', 'work', { token: tok, options: [{ number: OPTION.OBSERVE, value: encodeUint(0) }] });
    const seq0 = optionUint(r, OPTION.OBSERVE)!;
    expect(seq0).toBeDefined();
    expect(server.observers('/work')).toHaveLength(1);
    await server.notify('/work');
    await c.quiet(); // unchanged: nothing sent
    state = 'b';
    await server.notify('/work');
    const n = await c.next();
    expect(n.token).toEqual(tok);
    expect(td.decode(n.payload)).toBe('b');
    expect([TYPE_CON, TYPE_NON]).toContain(n.type);
    if (n.type === TYPE_CON) c.sendRaw(encodeMessage({ type: TYPE_ACK, code: 0, messageId: n.messageId, token: new Uint8Array(0), options: [], payload: new Uint8Array(0) }));
    expect(optionUint(n, OPTION.OBSERVE)!).toBeGreaterThan(seq0);
    const d = await c.call('0.01', 'work', { token: tok, options: [{ number: OPTION.OBSERVE, value: encodeUint(1) }] });
    expect(optionUint(d, OPTION.OBSERVE)).toBeUndefined();
    expect(server.observers()).toHaveLength(0);
    state = 'c';
    await server.notify('/work');
    await c.quiet();
  });

  it('filters by peer, drops an observer on RST and on session close', async () => {
    const { server, client } = setup({ conNotificationEvery: 1000, conNotificationIntervalMs: 1e9 });
    let state = 0;
    server.route('GET', '/work', async () => ({ code: '2.05', payload: te.encode(String(state)) }), { observable: true });
    const c1 = client();
    const c2 = client();
    for (const c of [c1, c2]) await c.call('0.01', 'work', { options: [{ number: OPTION.OBSERVE, value: encodeUint(0) }] });
    expect(server.observers()).toHaveLength(2);
    state = 1;
    await server.notify('/work', (p) => p.key === c1.mp.peer.key);
    const n = await c1.next();
    expect(n.type).toBe(TYPE_NON);
    await c2.quiet();
    c1.sendRaw(encodeMessage({ type: TYPE_RST, code: 0, messageId: n.messageId, token: new Uint8Array(0), options: [], payload: new Uint8Array(0) }));
    await new Promise((r) => setTimeout(r, 50));
    expect(server.observers().map((o) => o.peer.key)).toEqual([c2.mp.peer.key]);
    c2.mp.close();
    expect(server.observers()).toHaveLength(0);
  });

  it('a non-2.xx representation is sent once (CON, no Observe) and ends the observation', async () => {
    const { server, client } = setup();
    let gone = false;
    server.route('GET', '/work', async () => (gone ? { code: '4.04' } : { code: '2.05', payload: te.encode('x') }), { observable: true });
    const c = client();
    await c.call('0.01', 'work', { options: [{ number: OPTION.OBSERVE, value: encodeUint(0) }] });
    gone = true;
    await server.notify('/work');
    const n = await c.next();
    expect(codeString(n.code)).toBe('4.04');
    expect(optionUint(n, OPTION.OBSERVE)).toBeUndefined();
    expect(server.observers()).toHaveLength(0);
  });

  it('an unacknowledged confirmable notification is retransmitted, then the observer is dropped', async () => {
    const { server, client } = setup({ conNotificationEvery: 1, ackTimeoutMs: 20, maxRetransmit: 2 });
    let state = 0;
    server.route('GET', '/work', async () => ({ code: '2.05', payload: te.encode(String(state)) }), { observable: true });
    const c = client();
    await c.call('0.01', 'work', { options: [{ number: OPTION.OBSERVE, value: encodeUint(0) }] });
    state = 1;
    await server.notify('/work');
    const sent = [await c.next(), await c.next(), await c.next()];
    expect(new Set(sent.map((m) => m.messageId)).size).toBe(1);
    expect(sent.every((m) => m.type === TYPE_CON)).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    expect(server.observers()).toHaveLength(0);
  });
});

describe('S13 CoAP endpoint: server-initiated requests (LwM2M direction)', () => {
  /** A minimal device: answers CON requests from a table, records what it got. */
  function device(c: Client, answer: (m: CoapMessage) => { code: string; options?: CoapOption[]; payload?: Uint8Array } | undefined) {
    const got: CoapMessage[] = [];
    c.mp.onMessage((d) => {
      const m = decodeMessage(d);
      if (m.type !== TYPE_CON || m.code === 0 || m.code >= 32) return;
      got.push(m);
      const a = answer(m);
      if (!a) return;
      c.sendRaw(encodeMessage({ type: TYPE_ACK, code: codeOf(a.code), messageId: m.messageId, token: m.token, options: a.options ?? [], payload: a.payload ?? new Uint8Array(0) }));
    });
    return got;
  }

  it('retransmits with exponential back-off until acknowledged, and follows Block2 to the end', async () => {
    const { server, client } = setup({ ackTimeoutMs: 20 });
    const c = client();
    let dropped = 0;
    const got = device(c, (m) => {
      if (dropped < 2) {
        dropped++;
        return undefined;
      }
      const b2 = m.options.find((o) => o.number === OPTION.BLOCK2);
      const num = b2 ? decodeBlock(b2.value).num : 0;
      const slice = big.subarray(num * 1024, (num + 1) * 1024);
      return { code: '2.05', payload: slice, options: [{ number: OPTION.BLOCK2, value: encodeBlock({ num, more: (num + 1) * 1024 < big.length, szx: 6 }) }] };
    });
    const res = await server.request(c.mp.peer, { method: 'GET', path: ['5', '0', '1'] });
    expect(res.payload).toEqual(big);
    expect(got[0]!.messageId).toBe(got[1]!.messageId); // retransmissions reuse the message ID
    expect(got).toHaveLength(2 + 5);
  });

  it('RFC 7252 §4.8 defaults: first timeout in [2 s, 3 s] (ACK_RANDOM_FACTOR 1.5), doubling, 4 retransmissions, then failure', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const { server, client } = setup({ random: () => 1 }); // the top of the random range: 3 s
      const c = client();
      const got = device(c, () => undefined);
      const settle = async () => {
        for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
      };
      let failed: unknown;
      server.request(c.mp.peer, { method: 'GET', path: ['3', '0'] }).catch((e) => {
        failed = e;
      });
      await settle();
      expect(got).toHaveLength(1);
      for (const [wait, total] of [
        [3000, 2],
        [6000, 3],
        [12000, 4],
        [24000, 5],
      ] as const) {
        await vi.advanceTimersByTimeAsync(wait - 1);
        await settle();
        expect(got).toHaveLength(total - 1);
        await vi.advanceTimersByTimeAsync(1);
        await settle();
        expect(got).toHaveLength(total);
      }
      expect(failed).toBeUndefined();
      await vi.advanceTimersByTimeAsync(48000);
      await settle();
      expect(got).toHaveLength(5);
      expect(failed).toMatchObject({ code: 'coap_timeout' });
    } finally {
      vi.useRealTimers();
    }
  });

  it('gives up after MAX_RETRANSMIT retransmissions', async () => {
    const { server, client } = setup({ ackTimeoutMs: 10, maxRetransmit: 3 });
    const c = client();
    const got = device(c, () => undefined);
    await expect(server.request(c.mp.peer, { method: 'GET', path: ['3'] })).rejects.toMatchObject({ code: 'coap_timeout' });
    expect(got).toHaveLength(4);
  });

  it('sends a large payload with Block1 and the peer gets it whole', async () => {
    const { server, client } = setup({ maxBlockSize: 256 });
    const c = client();
    const parts: Uint8Array[] = [];
    device(c, (m) => {
      const b1 = decodeBlock(m.options.find((o) => o.number === OPTION.BLOCK1)!.value);
      parts.push(m.payload);
      return b1.more ? { code: '2.31', options: [{ number: OPTION.BLOCK1, value: encodeBlock(b1) }] } : { code: '2.04' };
    });
    const res = await server.request(c.mp.peer, { method: 'PUT', path: ['5', '0', '0'], contentFormat: 42, payload: big });
    expect(codeString(res.code)).toBe('2.04');
    expect(createHash('sha256').update(Buffer.concat(parts)).digest('hex')).toBe(createHash('sha256').update(big).digest('hex'));
  });

  it('observes the peer: notifications reach onNotify in freshness order, stale ones are dropped; cancelObserve deregisters', async () => {
    const { server, client } = setup();
    const c = client();
    let token: Uint8Array = new Uint8Array(0);
    const got = device(c, (m) => {
      token = m.token;
      return { code: '2.05', options: [{ number: OPTION.OBSERVE, value: encodeUint(10) }], payload: te.encode('v10') };
    });
    const seen: string[] = [];
    const first = await server.request(c.mp.peer, { method: 'GET', path: ['3', '0', '9'], observe: 0 }, (n) => seen.push(td.decode(n.payload)));
    expect(td.decode(first.payload)).toBe('v10');
    const notify = (seq: number, body: string, mid: number, type: 0 | 1 = TYPE_NON) =>
      c.sendRaw(encodeMessage({ type, code: codeOf('2.05'), messageId: mid, token, options: [{ number: OPTION.OBSERVE, value: encodeUint(seq) }], payload: te.encode(body) }));
    notify(12, 'v12', 900);
    notify(11, 'v11', 901); // older than 12: dropped
    notify(13, 'v13', 902, TYPE_CON);
    await new Promise((r) => setTimeout(r, 100));
    expect(seen).toEqual(['v12', 'v13']);
    await server.cancelObserve(c.mp.peer, ['3', '0', '9']);
    const dereg = got.at(-1)!;
    expect(optionUint(dereg, OPTION.OBSERVE)).toBe(1);
    expect(dereg.token).toEqual(token);
    notify(14, 'v14', 903);
    await new Promise((r) => setTimeout(r, 100));
    expect(seen).toEqual(['v12', 'v13']);
  });

  it('a pending request fails when the session closes', async () => {
    const { server, client } = setup();
    const c = client();
    device(c, () => undefined);
    const p = server.request(c.mp.peer, { method: 'GET', path: ['3'] });
    await new Promise((r) => setTimeout(r, 20));
    c.mp.close();
    await expect(p).rejects.toMatchObject({ code: 'coap_peer_closed' });
  });
});

describe('S13 CoAP endpoint: hostile datagrams (fast-check)', () => {
  it('random and mutated datagrams never crash the endpoint; malformed CONs get RST; it still answers afterwards', async () => {
    const fc = (await import('fast-check')).default;
    const { server, client } = setup();
    let runs = 0;
    server.route('GET', '/a', async () => ({ code: '2.05', payload: te.encode(String(++runs)) }));
    server.route('PUT', '/a', async () => ({ code: '2.04' }));
    const c = client();
    const valid = encodeMessage({ type: TYPE_CON, code: 1, messageId: 9, token: Uint8Array.of(1), options: [{ number: OPTION.URI_PATH, value: te.encode('a') }], payload: new Uint8Array(0) });
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.tuple(fc.nat(valid.length - 1), fc.nat(7)).map(([at, bit]) => {
        const b = valid.slice();
        b[at] = (b[at] as number) ^ (1 << bit);
        return b;
      })), async (bytes) => {
        c.sendRaw(bytes);
        await new Promise((r) => setImmediate(r));
      }),
      { numRuns: 300 },
    );
    await new Promise((r) => setTimeout(r, 100));
    for (const m of c.inbox.splice(0)) {
      // every reply is a well-formed ACK/RST/NON the endpoint made
      expect([TYPE_ACK, TYPE_RST, TYPE_NON]).toContain(m.type);
    }
    const r = await c.call('0.01', 'a', { mid: 4242 });
    expect(codeString(r.code)).toBe('2.05');
  });
});
