/**
 * The CoAP endpoint (RFC 7252 messaging, RFC 7959 block-wise transfer, RFC 7641 Observe) over any
 * DatagramTransport. It answers requests with routes, observes on behalf of clients, and sends its
 * own confirmable requests (LwM2M's server-initiated operations), observing the peer if asked.
 *
 * State is per peer (per DTLS session) so a closed session drops everything at once: the
 * deduplication cache, Block1 reassembly buffers, observers, exchanges and observations.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { type Block, blockSize, decodeBlock, encodeBlock, szxOf } from './block.ts';
import {
  ACK_RANDOM_FACTOR,
  ACK_TIMEOUT_MS,
  type CoapMethod,
  EXCHANGE_LIFETIME_MS,
  MAX_RETRANSMIT,
  METHOD_CODES,
  METHODS,
  NON_LIFETIME_MS,
  OPTION,
  TYPE_ACK,
  TYPE_CON,
  TYPE_NON,
  TYPE_RST,
} from './constants.ts';
import { CoapExchangeError, CoapFormatError } from './errors.ts';
import {
  type CoapMessage,
  type CoapOption,
  type CoapType,
  codeOf,
  codeString,
  decodeMessage,
  decodeUtf8,
  encodeMessage,
  encodeUint,
  isRequestCode,
  isResponseCode,
  optionUint,
  optionValues,
  utf8,
} from './message.ts';
import type { DatagramPeer, DatagramTransport } from './transport.ts';

export interface CoapRequest {
  peer: DatagramPeer;
  method: CoapMethod;
  path: string[];
  params: Record<string, string>;
  query: [string, string][];
  contentFormat?: number;
  accept?: number;
  /** whole body, Block1 reassembled */
  payload: Uint8Array;
  observe?: 0 | 1;
}

export interface CoapPayloadReader {
  size: number;
  /** A Uint8Array when the bytes are at hand (no await per block), a promise when they must be fetched. */
  read(offset: number, length: number): Uint8Array | Promise<Uint8Array>;
  /** The whole representation when it is in memory now (after a read), else undefined: lets the transport serve the next blocks. */
  whole?(): Uint8Array | undefined;
}

export interface CoapResponse {
  code: string;
  contentFormat?: number;
  etag?: Uint8Array;
  maxAge?: number;
  locationPath?: string[];
  /** Bytes, or a reader: Block2 then reads only the block asked for. */
  payload?: Uint8Array | CoapPayloadReader;
  /**
   * Until when (ms since the Unix epoch) the transport may answer the following Block2 requests of the
   * same GET itself (DatagramTransport.offloadBlock2) — the handler's answer must stay the same until then,
   * and `cancelOffloads()` ends it early. Asked right before the offload is handed over (after the block
   * was sent); undefined or absent: every block goes through the handler.
   */
  offloadUntil?: () => number | undefined;
}

export type CoapHandler = (req: CoapRequest) => Promise<CoapResponse>;

export interface CoapMetrics {
  /** one per answered request (not per retransmission), by method and response code */
  request?(method: string, code: string): void;
  /** one per completed multi-block transfer */
  blockTransfer?(direction: 'block1' | 'block2'): void;
  /** the number of registered observers, after every change */
  observers?(count: number): void;
}

export interface CoapServerOptions {
  logger: Logger;
  /** Largest block this endpoint sends or asks for: 16..1024 (default 1024). */
  maxBlockSize?: number;
  /** Largest request body it reassembles from Block1 (default 1 MiB); beyond: 4.13 with Size1. */
  maxBodySize?: number;
  metrics?: CoapMetrics;
  /** RFC 7252 §4.8 ACK_TIMEOUT (default 2000 ms); tests shorten it. */
  ackTimeoutMs?: number;
  maxRetransmit?: number;
  /** How long an empty ACK is followed by a separate response before request() gives up (default 60 s). */
  responseTimeoutMs?: number;
  /** Every n-th notification to an observer is confirmable (default 10) … */
  conNotificationEvery?: number;
  /** … and at least one every this many ms (default 60 s; RFC 7641 §4.5 asks for at least daily). */
  conNotificationIntervalMs?: number;
  /** Observers one peer may hold (default 16); beyond, GET is answered without registering. */
  maxObserversPerPeer?: number;
  random?: () => number;
  now?: () => number;
}

export interface OutgoingRequest {
  method: CoapMethod;
  path: string[];
  query?: [string, string][];
  contentFormat?: number;
  accept?: number;
  payload?: Uint8Array;
  observe?: 0 | 1;
}

interface Route {
  method: CoapMethod;
  pattern: string;
  segments: string[];
  handler: CoapHandler;
  observable: boolean;
}

interface Observer {
  tokenHex: string;
  token: Uint8Array;
  peer: DatagramPeer;
  route: Route;
  request: CoapRequest;
  fingerprint: string;
  notifications: number;
  lastConAt: number;
  pendingMid?: number;
}

interface PendingCon {
  bytes: Uint8Array;
  timer?: NodeJS.Timeout;
  onAck(m: CoapMessage): void;
  onRst(): void;
  onTimeout(): void;
}

interface Exchange {
  resolve(m: CoapMessage): void;
  reject(e: Error): void;
  timer?: NodeJS.Timeout;
}

interface ClientObservation {
  path: string[];
  token: Uint8Array;
  onNotify: (m: CoapMessage) => void;
  seq?: number;
  at: number;
}

interface Block1Buffer {
  chunks: Uint8Array[];
  length: number;
  at: number;
}

interface PeerState {
  peer: DatagramPeer;
  /** incoming messageId → encoded reply (undefined while the handler runs) */
  dedup: Map<number, { at: number; reply?: Uint8Array }>;
  block1: Map<string, Block1Buffer>;
  observers: Map<string, Observer>;
  /** our CON messages awaiting ACK/RST, by messageId */
  pending: Map<number, PendingCon>;
  /** our NON notifications by messageId, so an RST can cancel the observation */
  nonNotifications: Map<number, { tokenHex: string; at: number }>;
  exchanges: Map<string, Exchange>;
  observations: Map<string, ClientObservation>;
}

const KNOWN_REQUEST_OPTIONS = new Set<number>([
  OPTION.URI_HOST,
  OPTION.ETAG,
  OPTION.OBSERVE,
  OPTION.URI_PORT,
  OPTION.URI_PATH,
  OPTION.CONTENT_FORMAT,
  OPTION.URI_QUERY,
  OPTION.ACCEPT,
  OPTION.BLOCK2,
  OPTION.BLOCK1,
  OPTION.SIZE2,
  OPTION.SIZE1,
]);
const MAX_DEDUP_PER_PEER = 512;
const MAX_BLOCK1_PER_PEER = 4;
const SWEEP_MS = 5000;
const OBSERVE_WRAP = 1 << 24;
const OBSERVE_HALF = 1 << 23;
const EMPTY = new Uint8Array(0);

type Rendered = { code: string; options: CoapOption[]; payload: Uint8Array; offload?: { whole: () => Uint8Array | undefined; size: number; until: () => number | undefined } };

/** Request options a Block2 continuation may carry and still be served by the transport (Uri-Host, Uri-Port, Uri-Path, Uri-Query, Accept, Block2, Size2). */
const OFFLOADABLE_REQUEST_OPTIONS = new Set<number>([OPTION.URI_HOST, OPTION.URI_PORT, OPTION.URI_PATH, OPTION.URI_QUERY, OPTION.ACCEPT, OPTION.BLOCK2, OPTION.SIZE2]);

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');
const isSuccess = (code: string): boolean => code.startsWith('2.');

class BadRequest extends Error {
  constructor(
    readonly coapCode: string,
    message: string,
    readonly options: CoapOption[] = [],
  ) {
    super(message);
  }
}

export class CoapServer {
  private readonly log: Logger;
  private readonly maxSzx: number;
  private readonly maxBodySize: number;
  private readonly ackTimeoutMs: number;
  private readonly maxRetransmit: number;
  private readonly responseTimeoutMs: number;
  private readonly conEvery: number;
  private readonly conIntervalMs: number;
  private readonly maxObserversPerPeer: number;
  private readonly random: () => number;
  private readonly now: () => number;
  private readonly metrics: CoapMetrics;
  private readonly routes: Route[] = [];
  private readonly peers = new Map<string, PeerState>();
  private nextMid: number;
  private observeSeq: number;
  private observerCount = 0;
  private closed = false;
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly transport: DatagramTransport,
    opts: CoapServerOptions,
  ) {
    this.log = opts.logger;
    this.maxSzx = szxOf(opts.maxBlockSize ?? 1024);
    this.maxBodySize = opts.maxBodySize ?? 1024 * 1024;
    this.ackTimeoutMs = opts.ackTimeoutMs ?? ACK_TIMEOUT_MS;
    this.maxRetransmit = opts.maxRetransmit ?? MAX_RETRANSMIT;
    this.responseTimeoutMs = opts.responseTimeoutMs ?? 60_000;
    this.conEvery = Math.max(1, opts.conNotificationEvery ?? 10);
    this.conIntervalMs = opts.conNotificationIntervalMs ?? 60_000;
    this.maxObserversPerPeer = opts.maxObserversPerPeer ?? 16;
    this.random = opts.random ?? Math.random;
    this.now = opts.now ?? Date.now;
    this.metrics = opts.metrics ?? {};
    this.nextMid = randomBytes(2).readUInt16BE(0);
    this.observeSeq = randomBytes(2).readUInt16BE(0);
    transport.onDatagram((peer, data) => this.onDatagram(peer, data));
    transport.onPeerClosed((peer) => this.dropPeer(peer.key));
    this.sweeper = setInterval(() => this.sweep(), SWEEP_MS);
    this.sweeper.unref();
  }

  /** Registers a handler; `pattern` segments starting with ':' are parameters ('/glazes/:id/blob'). */
  route(method: CoapMethod, pattern: string, handler: CoapHandler, opts: { observable?: boolean } = {}): void {
    const segments = pattern.split('/').filter((s) => s !== '');
    this.routes.push({ method, pattern, segments, handler, observable: opts.observable === true && method === 'GET' });
  }

  /** Observers currently registered (all peers, or one). */
  observers(pattern?: string): { peer: DatagramPeer; path: string[] }[] {
    const out: { peer: DatagramPeer; path: string[] }[] = [];
    for (const st of this.peers.values()) {
      for (const o of st.observers.values()) {
        if (pattern === undefined || o.route.pattern === pattern) out.push({ peer: o.peer, path: o.request.path });
      }
    }
    return out;
  }

  /**
   * Re-runs the handler for each observer of `pattern` (optionally only those `filter` accepts) and
   * sends a notification where the representation changed. Resolves once every notification is sent.
   */
  async notify(pattern: string, filter?: (peer: DatagramPeer) => boolean): Promise<void> {
    const targets: Observer[] = [];
    for (const st of this.peers.values()) {
      for (const o of st.observers.values()) {
        if (o.route.pattern === pattern && (!filter || filter(o.peer))) targets.push(o);
      }
    }
    await Promise.all(targets.map((o) => this.sendNotification(o)));
  }

  /**
   * Sends a confirmable request to a peer (retransmitted per RFC 7252 §4.2), sends a large payload
   * with Block1, follows Block2 to the end, and resolves with the whole response. With `observe: 0`
   * and `onNotify`, later notifications are delivered to onNotify (each complete, in freshness order).
   */
  async request(peer: DatagramPeer, req: OutgoingRequest, onNotify?: (res: CoapMessage) => void): Promise<CoapMessage> {
    if (this.closed) throw new CoapExchangeError('coap_closed', 'endpoint closed');
    const payload = req.payload ?? EMPTY;
    const maxSize = blockSize(this.maxSzx);
    const token = randomBytes(4);
    const st = this.state(peer);
    let observation: ClientObservation | undefined;
    if (req.observe === 0 && onNotify) {
      observation = { path: req.path, token, onNotify, at: this.now() };
      st.observations.set(hex(token), observation);
    }
    try {
      let res: CoapMessage;
      if (payload.length <= maxSize) {
        res = await this.exchange(peer, this.requestMessage(req, token, payload, []));
      } else {
        res = await this.sendBlock1(peer, req, token, payload);
      }
      if (observation) {
        const seq = optionUint(res, OPTION.OBSERVE);
        if (seq === undefined || !isSuccess(codeString(res.code))) st.observations.delete(hex(token));
        else observation.seq = seq;
      }
      return await this.followBlock2(peer, req, res);
    } catch (e) {
      if (observation) st.observations.delete(hex(token));
      throw e;
    }
  }

  /** Stops observing `path` on `peer`: forgets the observation and sends a deregistering GET (Observe 1). */
  async cancelObserve(peer: DatagramPeer, path: string[]): Promise<void> {
    const st = this.peers.get(peer.key);
    if (!st) return;
    const key = path.join('/');
    for (const [tokenHex, o] of st.observations) {
      if (o.path.join('/') !== key) continue;
      st.observations.delete(tokenHex);
      await this.exchange(peer, this.requestMessage({ method: 'GET', path, observe: 1 }, o.token, EMPTY, [])).catch((e) =>
        this.log.debug({ peer: peer.key, err: (e as Error).message }, 'coap: deregistration not answered'),
      );
    }
  }

  /** Stops every timer, fails outstanding exchanges, drops all state and closes the transport. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweeper);
    for (const key of [...this.peers.keys()]) this.dropPeer(key, new CoapExchangeError('coap_closed', 'endpoint closed'));
    await this.transport.close();
  }

  // ---- incoming -------------------------------------------------------------------------------

  private onDatagram(peer: DatagramPeer, data: Uint8Array): void {
    if (this.closed) return;
    let msg: CoapMessage;
    try {
      msg = decodeMessage(data);
    } catch (e) {
      if (!(e instanceof CoapFormatError)) throw e;
      // §4.2/§4.3: a message that cannot be processed is rejected — CON with RST, others silently.
      // Unknown versions are always ignored (§3), so only a version-1 CON header earns an RST.
      const first = data[0] ?? 0;
      if (data.length >= 4 && first >> 6 === 1 && ((first >> 4) & 3) === TYPE_CON) {
        this.sendRst(peer, ((data[2] as number) << 8) | (data[3] as number));
      }
      this.log.debug({ peer: peer.key, code: e.code, err: e.message }, 'coap: malformed message refused');
      return;
    }
    if (msg.code === 0) {
      if (msg.type === TYPE_CON) this.sendRst(peer, msg.messageId); // CoAP ping
      else if (msg.type === TYPE_ACK) this.onAck(peer, msg);
      else if (msg.type === TYPE_RST) this.onRst(peer, msg.messageId);
      return;
    }
    if (isRequestCode(msg.code) && (msg.type === TYPE_CON || msg.type === TYPE_NON)) {
      void this.onRequest(peer, msg);
      return;
    }
    if (isResponseCode(msg.code)) {
      if (msg.type === TYPE_ACK) this.onAck(peer, msg);
      else if (msg.type === TYPE_CON || msg.type === TYPE_NON) this.onSeparateResponse(peer, msg);
      return;
    }
    if (msg.type === TYPE_CON) this.sendRst(peer, msg.messageId);
  }

  private onAck(peer: DatagramPeer, msg: CoapMessage): void {
    const st = this.peers.get(peer.key);
    const p = st?.pending.get(msg.messageId);
    if (!st || !p) return;
    clearTimeout(p.timer);
    st.pending.delete(msg.messageId);
    p.onAck(msg);
  }

  private onRst(peer: DatagramPeer, mid: number): void {
    const st = this.peers.get(peer.key);
    if (!st) return;
    const p = st.pending.get(mid);
    if (p) {
      clearTimeout(p.timer);
      st.pending.delete(mid);
      p.onRst();
      return;
    }
    const n = st.nonNotifications.get(mid);
    if (n) {
      st.nonNotifications.delete(mid);
      this.removeObserver(st, n.tokenHex, 'reset by the observer');
    }
  }

  private async onRequest(peer: DatagramPeer, msg: CoapMessage): Promise<void> {
    const st = this.state(peer);
    const seen = st.dedup.get(msg.messageId);
    if (seen) {
      // §4.5: a duplicate gets the same reply; one still being computed gets nothing yet.
      if (seen.reply) this.send(peer, seen.reply);
      return;
    }
    const entry: { at: number; reply?: Uint8Array } = { at: this.now() };
    st.dedup.set(msg.messageId, entry);
    if (st.dedup.size > MAX_DEDUP_PER_PEER) st.dedup.delete(st.dedup.keys().next().value as number);
    let reply: Rendered;
    let method = METHODS[msg.code as keyof typeof METHODS] ?? `code ${codeString(msg.code)}`;
    try {
      reply = await this.handle(st, msg);
    } catch (e) {
      if (e instanceof BadRequest) {
        reply = { code: e.coapCode, options: e.options, payload: utf8.encode(e.message) };
      } else {
        this.log.error({ peer: peer.key, err: e }, 'coap: handler failed');
        reply = { code: '5.00', options: [], payload: utf8.encode('internal error') };
      }
    }
    method = METHODS[msg.code as keyof typeof METHODS] ?? 'unknown';
    this.metrics.request?.(method, reply.code);
    if (this.closed || this.peers.get(peer.key) !== st) return;
    const out: CoapMessage = {
      type: msg.type === TYPE_CON ? TYPE_ACK : TYPE_NON,
      code: codeOf(reply.code),
      messageId: msg.type === TYPE_CON ? msg.messageId : this.mid(),
      token: msg.token,
      options: reply.options,
      payload: reply.payload,
    };
    const bytes = encodeMessage(out);
    entry.reply = bytes;
    this.send(peer, bytes);
    if (reply.offload && msg.type === TYPE_CON) this.offload(peer, msg, reply.offload, reply);
  }

  /** Ends every Block2 offload of the transport: the next block of each transfer goes through its handler. */
  cancelOffloads(): void {
    this.transport.cancelOffloads?.();
  }

  /**
   * Hands the rest of a Block2 transfer to the transport (DatagramTransport.offloadBlock2): the answer just
   * sent was a block of a GET with more to come, the whole representation is in memory and the handler
   * said until when it holds. The transport then answers the same GET (Block2 aside) byte for byte as
   * this class would — server.test.ts and packages/dtls/src/native.test.ts drive both and compare.
   */
  private offload(peer: DatagramPeer, msg: CoapMessage, spec: NonNullable<Rendered['offload']>, reply: Rendered): void {
    if (!this.transport.offloadBlock2 || msg.code !== METHOD_CODES.GET || msg.payload.length > 0) return;
    const until = spec.until();
    const whole = spec.whole();
    if (until === undefined || !(until > this.now()) || whole?.length !== spec.size) return;
    let blocks = 0;
    for (const o of msg.options) {
      if (!OFFLOADABLE_REQUEST_OPTIONS.has(o.number)) return;
      if (o.number === OPTION.BLOCK2) blocks++;
    }
    if (blocks !== 1) return;
    const prefix = reply.options.filter((o) => o.number < OPTION.BLOCK2);
    if (prefix.length + 2 !== reply.options.length) return; // only Block2 and Size2 above it
    const encodeOptions = (options: CoapOption[]) => encodeMessage({ type: TYPE_CON, code: codeOf(reply.code), messageId: 0, token: EMPTY, options, payload: EMPTY }).subarray(4);
    this.transport.offloadBlock2(peer, {
      requestOptions: encodeOptions(msg.options.filter((o) => o.number !== OPTION.BLOCK2)),
      responsePrefix: encodeOptions(prefix),
      responseLast: prefix.length > 0 ? (prefix[prefix.length - 1] as CoapOption).number : 0,
      code: codeOf(reply.code),
      maxSzx: this.maxSzx,
      payload: whole,
      deadline: until,
    });
  }

  private async handle(st: PeerState, msg: CoapMessage): Promise<{ code: string; options: CoapOption[]; payload: Uint8Array }> {
    for (const o of msg.options) {
      if (o.number === OPTION.PROXY_URI || o.number === OPTION.PROXY_SCHEME) {
        throw new BadRequest('5.05', 'this endpoint is not a proxy');
      }
      // §5.4.1: an unrecognized critical option (odd number) in a CON or NON request → 4.02.
      if (o.number % 2 === 1 && !KNOWN_REQUEST_OPTIONS.has(o.number)) {
        throw new BadRequest('4.02', `unsupported critical option ${o.number}`);
      }
    }
    const method = METHODS[msg.code as keyof typeof METHODS];
    let path: string[];
    let query: [string, string][];
    let contentFormat: number | undefined;
    let accept: number | undefined;
    let observeValue: number | undefined;
    let block1: Block | undefined;
    let block2: Block | undefined;
    let size1: number | undefined;
    try {
      path = optionValues(msg, OPTION.URI_PATH).map((v) => decodeUtf8(v, 'Uri-Path'));
      query = optionValues(msg, OPTION.URI_QUERY).map((v) => {
        const s = decodeUtf8(v, 'Uri-Query');
        const eq = s.indexOf('=');
        return eq < 0 ? [s, ''] : [s.slice(0, eq), s.slice(eq + 1)];
      });
      contentFormat = optionUint(msg, OPTION.CONTENT_FORMAT);
      accept = optionUint(msg, OPTION.ACCEPT);
      observeValue = optionUint(msg, OPTION.OBSERVE);
      size1 = optionUint(msg, OPTION.SIZE1);
      const b1 = msg.options.find((o) => o.number === OPTION.BLOCK1);
      const b2 = msg.options.find((o) => o.number === OPTION.BLOCK2);
      block1 = b1 ? decodeBlock(b1.value) : undefined;
      block2 = b2 ? decodeBlock(b2.value) : undefined;
    } catch (e) {
      if (e instanceof CoapFormatError) throw new BadRequest(e.code === 'coap_bad_block' ? '4.00' : '4.02', e.message);
      throw e;
    }
    if (!method) throw new BadRequest('4.05', `method code ${codeString(msg.code)} is not supported`);
    let found: { r: Route; params: Record<string, string> } | undefined;
    let anyPath = false;
    for (const r of this.routes) {
      const params = matchPath(r.segments, path);
      if (!params) continue;
      anyPath = true;
      if (r.method === method) {
        found = { r, params };
        break;
      }
    }
    if (!anyPath) throw new BadRequest('4.04', `no resource /${path.join('/')}`);
    if (!found) throw new BadRequest('4.05', `${method} is not allowed on /${path.join('/')}`);
    const route = found.r;

    let payload = msg.payload;
    const responseOptions: CoapOption[] = [];
    if (block1) {
      const done = this.reassemble(st, msg, method, path, query, block1, size1);
      if (!done) {
        const szx = Math.min(block1.szx, this.maxSzx);
        return { code: '2.31', options: [{ number: OPTION.BLOCK1, value: encodeBlock({ num: block1.num, more: true, szx }) }], payload: EMPTY };
      }
      payload = done;
      responseOptions.push({ number: OPTION.BLOCK1, value: encodeBlock({ num: block1.num, more: false, szx: block1.szx }) });
    } else if (size1 !== undefined && size1 > this.maxBodySize) {
      throw new BadRequest('4.13', `body of ${size1} bytes exceeds ${this.maxBodySize}`, [
        { number: OPTION.SIZE1, value: encodeUint(this.maxBodySize) },
      ]);
    }

    const observe = observeValue === 0 || observeValue === 1 ? observeValue : undefined;
    const request: CoapRequest = {
      peer: st.peer,
      method,
      path,
      params: found.params,
      query,
      payload,
      ...(contentFormat !== undefined ? { contentFormat } : {}),
      ...(accept !== undefined ? { accept } : {}),
      ...(observe !== undefined ? { observe } : {}),
    };
    const response = await route.handler(request);

    let observeSeq: number | undefined;
    const firstBlock = !block2 || block2.num === 0;
    const tokenHex = observe !== undefined ? hex(msg.token) : '';
    if (observe === 1 || (observe === 0 && !route.observable)) {
      this.removeObserver(st, tokenHex, 'deregistered');
    } else if (observe === 0 && route.observable && firstBlock) {
      const replacing = st.observers.has(tokenHex);
      if (isSuccess(response.code) && (replacing || st.observers.size < this.maxObserversPerPeer)) {
        const { observe: _o, ...base } = request;
        const observer: Observer = {
          tokenHex,
          token: msg.token,
          peer: st.peer,
          route,
          request: { ...base, payload: EMPTY },
          fingerprint: await fingerprint(response),
          notifications: 0,
          lastConAt: this.now(),
        };
        st.observers.set(tokenHex, observer);
        if (!replacing) this.countObservers(1);
        observeSeq = this.nextObserveSeq();
      } else {
        this.removeObserver(st, tokenHex, 'registration failed');
      }
    }

    // RFC 7252 §5.10.6.2: a GET naming the current ETag is answered 2.03 Valid without the body.
    if (response.code === '2.05' && response.etag && optionValues(msg, OPTION.ETAG).some((e) => hex(e) === hex(response.etag as Uint8Array))) {
      const opts = [...responseOptions, { number: OPTION.ETAG, value: response.etag }];
      if (observeSeq !== undefined) opts.push({ number: OPTION.OBSERVE, value: encodeUint(observeSeq) });
      return { code: '2.03', options: opts, payload: EMPTY };
    }
    const r = this.render(response, block2, observeSeq);
    const rendered = r instanceof Promise ? await r : r;
    if (responseOptions.length === 0) return rendered;
    return { code: rendered.code, options: [...responseOptions, ...rendered.options], payload: rendered.payload };
  }

  /** Block1 (RFC 7959 §2.5): returns the whole body after the last block, undefined before it. */
  private reassemble(
    st: PeerState,
    msg: CoapMessage,
    method: string,
    path: string[],
    query: [string, string][],
    block: Block,
    size1: number | undefined,
  ): Uint8Array | undefined {
    const tag = optionValues(msg, OPTION.REQUEST_TAG).map(hex).join(',');
    const key = `${method} ${path.join('/')}?${query.map(([k, v]) => `${k}=${v}`).join('&')}#${tag}`;
    const size = blockSize(block.szx);
    const offset = block.num * size;
    const tooLarge = () => {
      st.block1.delete(key);
      return new BadRequest('4.13', `body exceeds ${this.maxBodySize} bytes`, [{ number: OPTION.SIZE1, value: encodeUint(this.maxBodySize) }]);
    };
    if (size1 !== undefined && size1 > this.maxBodySize) throw tooLarge();
    if (block.more ? msg.payload.length !== size : msg.payload.length > size) {
      st.block1.delete(key);
      throw new BadRequest('4.00', `Block1 ${block.num}: payload of ${msg.payload.length} bytes does not fit block size ${size}${block.more ? ' (not last)' : ''}`);
    }
    let buf = st.block1.get(key);
    if (block.num === 0) {
      buf = { chunks: [], length: 0, at: this.now() };
      st.block1.delete(key);
      st.block1.set(key, buf);
      if (st.block1.size > MAX_BLOCK1_PER_PEER) st.block1.delete(st.block1.keys().next().value as string);
    } else if (!buf || buf.length !== offset) {
      st.block1.delete(key);
      throw new BadRequest('4.08', `Block1 ${block.num} at offset ${offset} does not continue a transfer (have ${buf?.length ?? 0} bytes)`);
    }
    if (offset + msg.payload.length > this.maxBodySize) throw tooLarge();
    buf.chunks.push(msg.payload);
    buf.length += msg.payload.length;
    buf.at = this.now();
    if (block.more) return undefined;
    st.block1.delete(key);
    if (block.num > 0) this.metrics.blockTransfer?.('block1');
    return concat(buf.chunks, buf.length);
  }

  /**
   * Response options and payload; slices with Block2 when asked or when larger than our block size.
   * Synchronous when the bytes are at hand (a Uint8Array, or a reader that returns one): no await per block.
   */
  private render(
    res: CoapResponse,
    block2: Block | undefined,
    observeSeq: number | undefined,
  ): Rendered | Promise<Rendered> {
    const options: CoapOption[] = [];
    if (res.etag) options.push({ number: OPTION.ETAG, value: res.etag });
    if (observeSeq !== undefined) options.push({ number: OPTION.OBSERVE, value: encodeUint(observeSeq) });
    for (const seg of res.locationPath ?? []) options.push({ number: OPTION.LOCATION_PATH, value: utf8.encode(seg) });
    if (res.contentFormat !== undefined) options.push({ number: OPTION.CONTENT_FORMAT, value: encodeUint(res.contentFormat) });
    if (res.maxAge !== undefined) options.push({ number: OPTION.MAX_AGE, value: encodeUint(res.maxAge) });
    const body = res.payload ?? EMPTY;
    const size = body instanceof Uint8Array ? body.length : body.size;
    const read = (offset: number, length: number): Uint8Array | Promise<Uint8Array> =>
      body instanceof Uint8Array ? body.subarray(offset, offset + length) : body.read(offset, length);
    const maxSize = blockSize(this.maxSzx);
    // An error answer to a block of a transfer (e.g. 4.01 when the credential was revoked mid-way) is
    // its own small representation, sent whole, not block `num` of it (RFC 7959 §2.2: a diagnostic payload).
    const whole = !block2 || (!res.code.startsWith('2.') && size <= maxSize);
    if (whole && size <= maxSize) {
      if (size === 0) return { code: res.code, options, payload: EMPTY };
      const all = read(0, size);
      return all instanceof Uint8Array ? { code: res.code, options, payload: all } : all.then((payload) => ({ code: res.code, options, payload }));
    }
    // The client's size if it asked for one no larger than ours (§2.4), else ours; NUM rescaled to it.
    const szx = block2 ? Math.min(block2.szx, this.maxSzx) : this.maxSzx;
    const bsize = blockSize(szx);
    const offset = block2 ? block2.num * blockSize(block2.szx) : 0;
    if (offset > 0 && offset >= size) {
      throw new BadRequest('4.02', `Block2 ${block2?.num} starts at ${offset}, beyond the ${size}-byte representation`);
    }
    const finish = (chunk: Uint8Array): Rendered => {
      const more = offset + chunk.length < size;
      options.push({ number: OPTION.BLOCK2, value: encodeBlock({ num: offset / bsize, more, szx }) });
      options.push({ number: OPTION.SIZE2, value: encodeUint(size) });
      if (!more && offset > 0) this.metrics.blockTransfer?.('block2');
      const rendered: Rendered = { code: res.code, options, payload: chunk };
      // The following blocks may be served by the transport when the whole representation is in memory.
      if (more && block2 && res.offloadUntil && observeSeq === undefined && res.code === '2.05') {
        rendered.offload = { whole: () => (body instanceof Uint8Array ? body : body.whole?.()), size, until: res.offloadUntil };
      }
      return rendered;
    };
    const chunk = read(offset, Math.min(bsize, size - offset));
    return chunk instanceof Uint8Array ? finish(chunk) : chunk.then(finish);
  }

  // ---- Observe, server side -------------------------------------------------------------------

  private nextObserveSeq(): number {
    this.observeSeq = (this.observeSeq + 1) % OBSERVE_WRAP;
    return this.observeSeq;
  }

  private countObservers(delta: number): void {
    this.observerCount += delta;
    this.metrics.observers?.(this.observerCount);
  }

  private removeObserver(st: PeerState, tokenHex: string, why: string): void {
    const o = st.observers.get(tokenHex);
    if (!o) return;
    st.observers.delete(tokenHex);
    if (o.pendingMid !== undefined) {
      clearTimeout(st.pending.get(o.pendingMid)?.timer);
      st.pending.delete(o.pendingMid);
    }
    this.countObservers(-1);
    this.log.debug({ peer: st.peer.key, path: o.request.path.join('/'), why }, 'coap: observer removed');
  }

  private async sendNotification(o: Observer): Promise<void> {
    const st = this.peers.get(o.peer.key);
    if (!st || st.observers.get(o.tokenHex) !== o) return;
    let response: CoapResponse;
    try {
      response = await o.route.handler(o.request);
    } catch (e) {
      this.log.error({ peer: o.peer.key, err: e }, 'coap: notification handler failed');
      response = { code: '5.00', payload: utf8.encode('internal error') };
    }
    if (st.observers.get(o.tokenHex) !== o) return;
    const fp = await fingerprint(response);
    if (fp === o.fingerprint) return;
    o.fingerprint = fp;
    const ok = isSuccess(response.code);
    // RFC 7641 §4.2: a non-2.xx notification ends the observation.
    if (!ok) this.removeObserver(st, o.tokenHex, `notification ${response.code}`);
    let rendered: { code: string; options: CoapOption[]; payload: Uint8Array };
    try {
      const r = this.render(response, undefined, ok ? this.nextObserveSeq() : undefined);
      rendered = r instanceof Promise ? await r : r;
    } catch (e) {
      this.log.error({ peer: o.peer.key, err: e }, 'coap: notification could not be rendered');
      return;
    }
    o.notifications += 1;
    const now = this.now();
    const confirmable = !ok || o.notifications % this.conEvery === 0 || now - o.lastConAt >= this.conIntervalMs;
    const mid = this.mid();
    const msg: CoapMessage = {
      type: (confirmable ? TYPE_CON : TYPE_NON) as CoapType,
      code: codeOf(rendered.code),
      messageId: mid,
      token: o.token,
      options: rendered.options,
      payload: rendered.payload,
    };
    if (!confirmable || !ok) {
      st.nonNotifications.set(mid, { tokenHex: o.tokenHex, at: now });
      this.send(o.peer, encodeMessage({ ...msg, type: ok ? TYPE_NON : TYPE_CON }));
      return;
    }
    // §4.5.2: a newer state supersedes a confirmable notification still being retransmitted.
    if (o.pendingMid !== undefined) {
      clearTimeout(st.pending.get(o.pendingMid)?.timer);
      st.pending.delete(o.pendingMid);
    }
    o.pendingMid = mid;
    o.lastConAt = now;
    this.sendCon(st, msg, {
      onAck: () => {
        o.pendingMid = undefined;
      },
      onRst: () => this.removeObserver(st, o.tokenHex, 'reset by the observer'),
      onTimeout: () => this.removeObserver(st, o.tokenHex, 'confirmable notification not acknowledged'),
    });
  }

  // ---- client side ----------------------------------------------------------------------------

  private requestMessage(req: OutgoingRequest, token: Uint8Array, payload: Uint8Array, extra: CoapOption[]): CoapMessage {
    const options: CoapOption[] = [...extra];
    if (req.observe !== undefined) options.push({ number: OPTION.OBSERVE, value: encodeUint(req.observe) });
    for (const seg of req.path) options.push({ number: OPTION.URI_PATH, value: utf8.encode(seg) });
    if (req.contentFormat !== undefined) options.push({ number: OPTION.CONTENT_FORMAT, value: encodeUint(req.contentFormat) });
    for (const [k, v] of req.query ?? []) options.push({ number: OPTION.URI_QUERY, value: utf8.encode(v === '' ? k : `${k}=${v}`) });
    if (req.accept !== undefined) options.push({ number: OPTION.ACCEPT, value: encodeUint(req.accept) });
    return { type: TYPE_CON, code: METHOD_CODES[req.method], messageId: 0, token, options, payload };
  }

  private async sendBlock1(peer: DatagramPeer, req: OutgoingRequest, token: Uint8Array, payload: Uint8Array): Promise<CoapMessage> {
    let szx = this.maxSzx;
    let offset = 0;
    for (;;) {
      const size = blockSize(szx);
      const chunk = payload.subarray(offset, offset + size);
      const more = offset + chunk.length < payload.length;
      const extra: CoapOption[] = [{ number: OPTION.BLOCK1, value: encodeBlock({ num: offset / size, more, szx }) }];
      if (offset === 0) extra.push({ number: OPTION.SIZE1, value: encodeUint(payload.length) });
      const res = await this.exchange(peer, this.requestMessage(req, offset === 0 ? token : randomBytes(4), chunk, extra));
      if (!more || codeString(res.code) !== '2.31') {
        if (!more && offset > 0) this.metrics.blockTransfer?.('block1');
        return res;
      }
      const b1 = res.options.find((o) => o.number === OPTION.BLOCK1);
      // §2.5: the server may ask for smaller blocks in its 2.31.
      if (b1) szx = Math.min(szx, decodeBlock(b1.value).szx);
      offset += chunk.length;
    }
  }

  private async followBlock2(peer: DatagramPeer, req: OutgoingRequest, first: CoapMessage): Promise<CoapMessage> {
    const b2opt = first.options.find((o) => o.number === OPTION.BLOCK2);
    if (!b2opt) return first;
    let block = decodeBlock(b2opt.value);
    if (!block.more) return first;
    const chunks = [first.payload];
    let total = first.payload.length;
    const etag = optionValues(first, OPTION.ETAG)[0];
    while (block.more) {
      const szx = Math.min(block.szx, this.maxSzx);
      const offset = (block.num + 1) * blockSize(block.szx);
      const next = { method: 'GET' as const, path: req.path, ...(req.query ? { query: req.query } : {}), ...(req.accept !== undefined ? { accept: req.accept } : {}) };
      const msg = this.requestMessage(next, randomBytes(4), EMPTY, [
        { number: OPTION.BLOCK2, value: encodeBlock({ num: offset / blockSize(szx), more: false, szx }) },
      ]);
      const res = await this.exchange(peer, msg);
      const opt = res.options.find((o) => o.number === OPTION.BLOCK2);
      if (!isSuccess(codeString(res.code)) || !opt) return res;
      const e2 = optionValues(res, OPTION.ETAG)[0];
      if (etag && e2 && hex(etag) !== hex(e2)) {
        throw new CoapExchangeError('coap_reset', 'representation changed during a Block2 transfer (ETag differs)');
      }
      block = decodeBlock(opt.value);
      chunks.push(res.payload);
      total += res.payload.length;
      if (total > this.maxBodySize) throw new CoapExchangeError('coap_reset', `Block2 response exceeds ${this.maxBodySize} bytes`);
    }
    this.metrics.blockTransfer?.('block2');
    return { ...first, options: first.options.filter((o) => o.number !== OPTION.BLOCK2), payload: concat(chunks, total) };
  }

  private exchange(peer: DatagramPeer, msg: CoapMessage): Promise<CoapMessage> {
    if (this.closed) return Promise.reject(new CoapExchangeError('coap_closed', 'endpoint closed'));
    const st = this.state(peer);
    const tokenHex = hex(msg.token);
    return new Promise<CoapMessage>((resolve, reject) => {
      const ex: Exchange = {
        resolve: (m) => {
          clearTimeout(ex.timer);
          st.exchanges.delete(tokenHex);
          resolve(m);
        },
        reject: (e) => {
          clearTimeout(ex.timer);
          st.exchanges.delete(tokenHex);
          reject(e);
        },
      };
      st.exchanges.set(tokenHex, ex);
      this.sendCon(st, { ...msg, messageId: this.mid() }, {
        onAck: (ack) => {
          if (ack.code !== 0) return ex.resolve(ack);
          // Empty ACK: the response comes separately (§5.2.2).
          ex.timer = setTimeout(() => ex.reject(new CoapExchangeError('coap_timeout', 'no separate response')), this.responseTimeoutMs);
          ex.timer.unref();
        },
        onRst: () => ex.reject(new CoapExchangeError('coap_reset', `request reset by ${peer.key}`)),
        onTimeout: () => ex.reject(new CoapExchangeError('coap_timeout', `no acknowledgement from ${peer.key} after ${this.maxRetransmit} retransmissions`)),
      });
    });
  }

  private onSeparateResponse(peer: DatagramPeer, msg: CoapMessage): void {
    const st = this.state(peer);
    const seen = st.dedup.get(msg.messageId);
    if (seen) {
      if (seen.reply) this.send(peer, seen.reply);
      return;
    }
    const tokenHex = hex(msg.token);
    const ex = st.exchanges.get(tokenHex);
    const obs = st.observations.get(tokenHex);
    if (!ex && !obs) {
      // RFC 7641 §3.6: an unwanted notification is rejected with RST, which ends the observation.
      this.sendRst(peer, msg.messageId);
      return;
    }
    if (msg.type === TYPE_CON) {
      const ack = encodeMessage({ type: TYPE_ACK, code: 0, messageId: msg.messageId, token: EMPTY, options: [], payload: EMPTY });
      st.dedup.set(msg.messageId, { at: this.now(), reply: ack });
      this.send(peer, ack);
    } else {
      st.dedup.set(msg.messageId, { at: this.now() });
    }
    if (ex) {
      ex.resolve(msg);
      return;
    }
    if (!obs) return;
    let seq: number | undefined;
    try {
      seq = optionUint(msg, OPTION.OBSERVE);
    } catch {
      return;
    }
    if (!isSuccess(codeString(msg.code))) st.observations.delete(tokenHex);
    else if (seq === undefined) return;
    else {
      // §3.4: deliver only notifications fresher than the last one.
      const now = this.now();
      const v1 = obs.seq;
      const fresh = v1 === undefined || (v1 < seq && seq - v1 < OBSERVE_HALF) || (v1 > seq && v1 - seq > OBSERVE_HALF) || now > obs.at + 128_000;
      if (!fresh) return;
      obs.seq = seq;
      obs.at = now;
    }
    void this.followBlock2(peer, { method: 'GET', path: obs.path }, msg)
      .then((full) => obs.onNotify(full))
      .catch((e) => this.log.debug({ peer: peer.key, err: (e as Error).message }, 'coap: notification body not fetched'));
  }

  // ---- messaging ------------------------------------------------------------------------------

  private sendCon(st: PeerState, msg: CoapMessage, handlers: Omit<PendingCon, 'bytes' | 'timer'>): void {
    const bytes = encodeMessage(msg);
    const pending: PendingCon = { bytes, ...handlers };
    st.pending.set(msg.messageId, pending);
    let timeout = this.ackTimeoutMs * (1 + this.random() * (ACK_RANDOM_FACTOR - 1));
    let attempts = 0;
    const arm = () => {
      pending.timer = setTimeout(() => {
        if (st.pending.get(msg.messageId) !== pending) return;
        if (attempts >= this.maxRetransmit) {
          st.pending.delete(msg.messageId);
          pending.onTimeout();
          return;
        }
        attempts += 1;
        timeout *= 2;
        this.send(st.peer, bytes);
        arm();
      }, timeout);
      pending.timer.unref();
    };
    this.send(st.peer, bytes);
    arm();
  }

  private sendRst(peer: DatagramPeer, messageId: number): void {
    this.send(peer, encodeMessage({ type: TYPE_RST, code: 0, messageId, token: EMPTY, options: [], payload: EMPTY }));
  }

  private send(peer: DatagramPeer, bytes: Uint8Array): void {
    this.transport.send(peer, bytes).catch((e) => this.log.debug({ peer: peer.key, err: (e as Error).message }, 'coap: send failed'));
  }

  private mid(): number {
    this.nextMid = (this.nextMid + 1) & 0xffff;
    return this.nextMid;
  }

  private state(peer: DatagramPeer): PeerState {
    let st = this.peers.get(peer.key);
    if (!st) {
      st = {
        peer,
        dedup: new Map(),
        block1: new Map(),
        observers: new Map(),
        pending: new Map(),
        nonNotifications: new Map(),
        exchanges: new Map(),
        observations: new Map(),
      };
      this.peers.set(peer.key, st);
    }
    return st;
  }

  private dropPeer(key: string, error?: Error): void {
    const st = this.peers.get(key);
    if (!st) return;
    this.peers.delete(key);
    for (const p of st.pending.values()) clearTimeout(p.timer);
    for (const ex of st.exchanges.values()) ex.reject(error ?? new CoapExchangeError('coap_peer_closed', `session ${key} closed`));
    if (st.observers.size > 0) this.countObservers(-st.observers.size);
  }

  private sweep(): void {
    const now = this.now();
    for (const [key, st] of this.peers) {
      for (const [mid, e] of st.dedup) if (now - e.at > EXCHANGE_LIFETIME_MS) st.dedup.delete(mid);
      for (const [k, b] of st.block1) if (now - b.at > EXCHANGE_LIFETIME_MS) st.block1.delete(k);
      for (const [mid, n] of st.nonNotifications) if (now - n.at > NON_LIFETIME_MS) st.nonNotifications.delete(mid);
      const idle =
        st.dedup.size + st.block1.size + st.observers.size + st.pending.size + st.nonNotifications.size + st.exchanges.size + st.observations.size === 0;
      if (idle) this.peers.delete(key);
    }
  }
}

function matchPath(segments: string[], path: string[]): Record<string, string> | undefined {
  if (segments.length !== path.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i] as string;
    const p = path[i] as string;
    if (s.startsWith(':')) params[s.slice(1)] = p;
    else if (s !== p) return undefined;
  }
  return params;
}

function concat(chunks: Uint8Array[], length: number): Uint8Array {
  const out = new Uint8Array(length);
  let pos = 0;
  for (const c of chunks) {
    out.set(c, pos);
    pos += c.length;
  }
  return out;
}

/** What "changed" means for a notification: code, format and ETag, or the bytes' digest without one. */
async function fingerprint(res: CoapResponse): Promise<string> {
  const head = `${res.code}|${res.contentFormat ?? ''}`;
  if (res.etag) return `${head}|e${hex(res.etag)}`;
  const body = res.payload ?? EMPTY;
  const bytes = body instanceof Uint8Array ? body : await body.read(0, body.size);
  return `${head}|d${createHash('sha256').update(bytes).digest('hex')}`;
}


