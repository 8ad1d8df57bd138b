/**
 * An LwM2M 1.1 client simulator: the independent peer of the master's LwM2M server in tests and
 * benches. It has its OWN CoAP (RFC 7252/7959/7641) and TLV code — nothing from @tips/coap or the
 * master — so a bug shared by both sides cannot hide. It rides on any datagram link: a DTLS client
 * (@tips/dtls createDtlsClient has this shape) or plain UDP (udpLink, unit-level tests only).
 *
 * Device behaviour: Bootstrap (POST /bs, accepts the server's writes of /0 and /1, waits for
 * Bootstrap-Finish), Register/Update/De-register, answers Read/Write/Execute/Observe on objects
 * 1, 3 and 5, and Firmware Update the TIPS way: the signed SUIT envelope arrives in /5/0/0 and is
 * verified against the operator keys the device trusts (as a Linux metal does); the Package URI
 * (/5/0/1) is fetched block-wise over CoAP and its SHA-256 must be the digest the verified
 * manifest binds; Update (/5/0/2) "installs" it and reports result 1.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { decode as cborDecode, encode as cborEncode } from 'cborg';
import { type TrustedKey, verifyEnvelope, verifyGlazeBinding } from '@tips/suit';

// ---- datagram link ----

export interface DatagramLink {
  send(data: Uint8Array): Promise<void>;
  onMessage(h: (d: Uint8Array) => void): void;
  close(): Promise<void>;
}

/** Plain UDP to host:port (tests of the LwM2M layer before/without DTLS; the master never speaks it). */
export async function udpLink(host: string, port: number): Promise<DatagramLink> {
  const sock = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  await new Promise<void>((r) => sock.bind(0, r));
  const handlers: ((d: Uint8Array) => void)[] = [];
  sock.on('message', (m) => {
    for (const h of handlers) h(new Uint8Array(m));
  });
  return {
    send: (d) => new Promise((res, rej) => sock.send(d, port, host, (e) => (e ? rej(e) : res()))),
    onMessage: (h) => {
      handlers.push(h);
    },
    close: () => new Promise<void>((r) => sock.close(() => r())),
  };
}

// ---- CoAP codec (own) ----

const CON = 0;
const NON = 1;
const ACK = 2;
const RST = 3;
const O_OBSERVE = 6;
const O_LOCATION_PATH = 8;
const O_URI_PATH = 11;
const O_CONTENT_FORMAT = 12;
const O_URI_QUERY = 15;
const O_ACCEPT = 17;
const O_BLOCK2 = 23;
const CF_TEXT = 0;
const CF_LINK = 40;
const CF_OPAQUE = 42;
const CF_SENML_CBOR = 112;
const CF_TLV = 11542;

interface Msg {
  type: number;
  code: number;
  mid: number;
  token: Uint8Array;
  options: [number, Uint8Array][];
  payload: Uint8Array;
}

const code = (c: string) => {
  const [a, b] = c.split('.').map(Number);
  return (a! << 5) | b!;
};
const codeText = (n: number) => `${n >> 5}.${String(n & 31).padStart(2, '0')}`;

function uint(n: number): Uint8Array {
  const out: number[] = [];
  while (n > 0) {
    out.unshift(n & 0xff);
    n = Math.floor(n / 256);
  }
  return Uint8Array.from(out);
}
const readUint = (b: Uint8Array) => b.reduce((n, x) => n * 256 + x, 0);

function encode(m: Msg): Uint8Array {
  const out: number[] = [(1 << 6) | (m.type << 4) | m.token.length, m.code, m.mid >> 8, m.mid & 0xff, ...m.token];
  let last = 0;
  const nib = (v: number) => (v < 13 ? [v, []] : v < 269 ? [13, [v - 13]] : [14, [(v - 269) >> 8, (v - 269) & 0xff]]) as [number, number[]];
  for (const [num, val] of [...m.options].sort((a, b) => a[0] - b[0])) {
    const [dn, dx] = nib(num - last);
    const [ln, lx] = nib(val.length);
    out.push((dn << 4) | ln, ...dx, ...lx, ...val);
    last = num;
  }
  if (m.payload.length > 0) out.push(0xff, ...m.payload);
  return Uint8Array.from(out);
}

function decode(b: Uint8Array): Msg {
  if (b.length < 4 || b[0]! >> 6 !== 1) throw new Error('not CoAP 1');
  const tkl = b[0]! & 15;
  const m: Msg = { type: (b[0]! >> 4) & 3, code: b[1]!, mid: (b[2]! << 8) | b[3]!, token: b.slice(4, 4 + tkl), options: [], payload: new Uint8Array(0) };
  let i = 4 + tkl;
  let num = 0;
  const ext = (v: number) => {
    if (v === 13) return b[i++]! + 13;
    if (v === 14) {
      const x = ((b[i]! << 8) | b[i + 1]!) + 269;
      i += 2;
      return x;
    }
    if (v === 15) throw new Error('reserved option nibble');
    return v;
  };
  while (i < b.length) {
    if (b[i] === 0xff) {
      m.payload = b.slice(i + 1);
      break;
    }
    const h = b[i++]!;
    num += ext(h >> 4);
    const len = ext(h & 15);
    m.options.push([num, b.slice(i, i + len)]);
    i += len;
  }
  return m;
}

const opt = (m: Msg, n: number) => m.options.find(([k]) => k === n)?.[1];
const opts = (m: Msg, n: number) => m.options.filter(([k]) => k === n).map(([, v]) => v);
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const utf8 = (s: string) => new TextEncoder().encode(s);

// ---- TLV (own, minimal) ----

function tlv(kind: number, id: number, value: Uint8Array): number[] {
  const idLen = id > 255 ? 1 : 0;
  const lenType = value.length < 8 ? 0 : value.length < 256 ? 1 : value.length < 65536 ? 2 : 3;
  const head = [(kind << 6) | (idLen << 5) | (lenType << 3) | (lenType === 0 ? value.length : 0)];
  head.push(...(idLen ? [id >> 8, id & 255] : [id]));
  for (let k = lenType - 1; k >= 0; k--) head.push((value.length >> (8 * k)) & 255);
  return [...head, ...value];
}

function parseTlv(b: Uint8Array): { kind: number; id: number; value: Uint8Array }[] {
  const out: { kind: number; id: number; value: Uint8Array }[] = [];
  let i = 0;
  while (i < b.length) {
    const t = b[i++]!;
    const id = t & 0x20 ? (b[i++]! << 8) | b[i++]! : b[i++]!;
    const lt = (t >> 3) & 3;
    let len = t & 7;
    if (lt) {
      len = 0;
      for (let k = 0; k < lt; k++) len = (len << 8) | b[i++]!;
    }
    out.push({ kind: t >> 6, id, value: b.slice(i, i + len) });
    i += len;
  }
  return out;
}

type Value = string | number | boolean | Uint8Array;

function valueBytes(v: Value): Uint8Array {
  if (typeof v === 'string') return utf8(v);
  if (typeof v === 'boolean') return Uint8Array.of(v ? 1 : 0);
  if (v instanceof Uint8Array) return v;
  for (const size of [1, 2, 4, 8]) {
    if (size === 8 || (v >= -(2 ** (size * 8 - 1)) && v < 2 ** (size * 8 - 1))) {
      const out = new Uint8Array(size);
      let x = BigInt.asUintN(size * 8, BigInt(v));
      for (let k = size - 1; k >= 0; k--) {
        out[k] = Number(x & 255n);
        x >>= 8n;
      }
      return out;
    }
  }
  throw new Error('unreachable');
}
const tlvInt = (b: Uint8Array) => Number(BigInt.asIntN(b.length * 8, b.reduce((n, x) => (n << 8n) | BigInt(x), 0n)));

// ---- the simulated device ----

export interface SimFirmwareEvent {
  state: number;
  result: number;
}

export interface Lwm2mSimOptions {
  /** The endpoint name: the metal's TIPS ID (or name). */
  endpoint: string;
  link: DatagramLink;
  lifetime?: number;
  binding?: 'U' | 'UQ';
  /** Operator keys the device trusts for manifests (its trust list), and its vendor/class policy. */
  trust?: TrustedKey[];
  device?: { vendorId?: Uint8Array; classId?: Uint8Array };
  ackTimeoutMs?: number;
  /** Block size the device asks for when downloading (16..1024). */
  blockSize?: number;
}

interface Observer {
  token: Uint8Array;
  path: string;
  accept: number;
  seq: number;
}

export class Lwm2mSim {
  /** Resource values: "obj/inst/res" → value. */
  readonly resources = new Map<string, Value>();
  registrationPath: string[] | undefined;
  bootstrapFinished = false;
  readonly firmwareEvents: SimFirmwareEvent[] = [];
  firmwareImage: Uint8Array | undefined;
  private mid = randomBytes(2).readUInt16BE(0);
  private readonly pending = new Map<string, { resolve: (m: Msg) => void; reject: (e: Error) => void; timer?: NodeJS.Timeout }>();
  private readonly replies = new Map<number, Uint8Array>();
  private readonly observers = new Map<string, Observer>();
  private manifest: Uint8Array | undefined;
  private bsWaiter: (() => void) | undefined;
  private updateTimer: NodeJS.Timeout | undefined;

  constructor(private readonly o: Lwm2mSimOptions) {
    o.link.onMessage((d) => this.onDatagram(d));
    const r = this.resources;
    r.set('1/0/0', 1);
    r.set('1/0/1', o.lifetime ?? 300);
    r.set('1/0/7', o.binding ?? 'U');
    r.set('3/0/0', 'TIPS testbed');
    r.set('3/0/1', 'lwm2m-sim');
    r.set('3/0/3', '1.0.0');
    r.set('3/0/9', 87);
    r.set('3/0/6/0', 1);
    r.set('3/0/6/1', 5);
    r.set('3/0/16', 'UQ');
    r.set('5/0/1', '');
    r.set('5/0/3', 0);
    r.set('5/0/5', 0);
  }

  // -- client side: requests to the server --

  private nextMid() {
    this.mid = (this.mid + 1) & 0xffff;
    return this.mid;
  }

  /** A confirmable request, retransmitted (ACK_TIMEOUT doubling, 4 times); resolves with the response (piggybacked or separate). */
  async request(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string[], more: { query?: string[]; contentFormat?: number; payload?: Uint8Array; options?: [number, Uint8Array][] } = {}): Promise<Msg> {
    const token = randomBytes(4);
    const m: Msg = {
      type: CON,
      code: { GET: 1, POST: 2, PUT: 3, DELETE: 4 }[method],
      mid: this.nextMid(),
      token,
      options: [
        ...path.map((p) => [O_URI_PATH, utf8(p)] as [number, Uint8Array]),
        ...(more.query ?? []).map((q) => [O_URI_QUERY, utf8(q)] as [number, Uint8Array]),
        ...(more.contentFormat !== undefined ? [[O_CONTENT_FORMAT, uint(more.contentFormat)] as [number, Uint8Array]] : []),
        ...(more.options ?? []),
      ],
      payload: more.payload ?? new Uint8Array(0),
    };
    const bytes = encode(m);
    const key = Buffer.from(token).toString('hex');
    return new Promise<Msg>((resolve, reject) => {
      let timeout = this.o.ackTimeoutMs ?? 2000;
      let tries = 0;
      const entry: { resolve: (m: Msg) => void; reject: (e: Error) => void; timer?: NodeJS.Timeout } = {
        resolve: (r) => {
          clearTimeout(entry.timer);
          this.pending.delete(key);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(entry.timer);
          this.pending.delete(key);
          reject(e);
        },
      };
      const fire = () => {
        if (tries++ > 4) return entry.reject(new Error(`${method} /${path.join('/')}: no answer`));
        void this.o.link.send(bytes).catch(() => {});
        entry.timer = setTimeout(fire, timeout);
        timeout *= 2;
      };
      this.pending.set(key, entry);
      fire();
    });
  }

  /** GET with Block2, block after block, the whole body (RFC 7959 §2.4). */
  async download(path: string[]): Promise<Uint8Array> {
    const szx = Math.log2(this.o.blockSize ?? 1024) - 4;
    const parts: Uint8Array[] = [];
    for (let num = 0; ; num++) {
      const res = await this.request('GET', path, { options: [[O_BLOCK2, uint((num << 4) | szx)]] });
      if (codeText(res.code) !== '2.05') throw new Error(`GET /${path.join('/')} block ${num}: ${codeText(res.code)}`);
      parts.push(res.payload);
      const b2 = opt(res, O_BLOCK2);
      if (!b2 || !(readUint(b2) & 8)) break;
    }
    return Buffer.concat(parts);
  }

  private links(): string {
    return '</>;rt="oma.lwm2m";ct=11542,</1>;ver=1.1,</1/0>,</3>;ver=1.1,</3/0>,</5>;ver=1.0,</5/0>';
  }

  /** Bootstrap-Request, then wait for the server's writes and Bootstrap-Finish. */
  async bootstrap(timeoutMs = 30_000): Promise<void> {
    const finished = new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no Bootstrap-Finish')), timeoutMs);
      this.bsWaiter = () => {
        clearTimeout(t);
        resolve();
      };
    });
    const res = await this.request('POST', ['bs'], { query: [`ep=${this.o.endpoint}`] });
    if (codeText(res.code) !== '2.04') {
      this.bsWaiter = undefined;
      throw new Error(`Bootstrap-Request: ${codeText(res.code)} ${text(res.payload)}`);
    }
    await finished;
  }

  /** Register; returns the CoAP code ('2.01' on success, the refusal otherwise). */
  async register(version = '1.1'): Promise<string> {
    const lt = Number(this.resources.get('1/0/1') ?? this.o.lifetime ?? 300);
    const b = String(this.resources.get('1/0/7') ?? this.o.binding ?? 'U');
    const res = await this.request('POST', ['rd'], { query: [`ep=${this.o.endpoint}`, `lt=${lt}`, `lwm2m=${version}`, `b=${b}`], contentFormat: CF_LINK, payload: utf8(this.links()) });
    if (codeText(res.code) === '2.01') this.registrationPath = opts(res, O_LOCATION_PATH).map(text);
    return codeText(res.code);
  }

  async update(query: string[] = []): Promise<string> {
    if (!this.registrationPath) throw new Error('not registered');
    return codeText((await this.request('POST', this.registrationPath, { query })).code);
  }

  /** Sends an Update every `ms` until stopUpdates (a device that goes silent lets its lifetime run out). */
  startUpdates(ms: number): void {
    this.stopUpdates();
    this.updateTimer = setInterval(() => void this.update().catch(() => {}), ms);
  }
  stopUpdates(): void {
    clearInterval(this.updateTimer);
  }

  async deregister(): Promise<string> {
    if (!this.registrationPath) throw new Error('not registered');
    const c = codeText((await this.request('DELETE', this.registrationPath)).code);
    this.registrationPath = undefined;
    return c;
  }

  async close(): Promise<void> {
    this.stopUpdates();
    for (const p of this.pending.values()) p.reject(new Error('closed'));
    await this.o.link.close();
  }

  // -- server side: the master's requests to the device --

  private onDatagram(d: Uint8Array): void {
    let m: Msg;
    try {
      m = decode(d);
    } catch {
      return;
    }
    if (m.code === 0) {
      if (m.type === RST) {
        for (const [k, o] of this.observers) if (o.seq >= 0 && this.lastNotifyMid.get(k) === m.mid) this.observers.delete(k);
      }
      return;
    }
    if (m.code >= 64) {
      // A response to one of our requests: piggybacked in an ACK, or separate (CON/NON → ACK it).
      if (m.type === CON) void this.o.link.send(encode({ type: ACK, code: 0, mid: m.mid, token: new Uint8Array(0), options: [], payload: new Uint8Array(0) }));
      this.pending.get(Buffer.from(m.token).toString('hex'))?.resolve(m);
      return;
    }
    if (m.type === ACK) return;
    const seen = this.replies.get(m.mid);
    if (seen) {
      void this.o.link.send(seen);
      return;
    }
    void this.serve(m).then((r) => {
      const reply = encode({ type: m.type === CON ? ACK : NON, code: code(r.code), mid: m.type === CON ? m.mid : this.nextMid(), token: m.token, options: r.options ?? [], payload: r.payload ?? new Uint8Array(0) });
      this.replies.set(m.mid, reply);
      if (this.replies.size > 64) this.replies.delete(this.replies.keys().next().value as number);
      void this.o.link.send(reply);
    });
  }

  private readonly lastNotifyMid = new Map<string, number>();

  private render(path: string, accept: number): { code: string; options?: [number, Uint8Array][]; payload?: Uint8Array } {
    const parts = path.split('/').filter(Boolean);
    const under = [...this.resources.keys()].filter((k) => (k + '/').startsWith(parts.join('/') + '/') && !k.startsWith('0/'));
    if (under.length === 0) return { code: '4.04' };
    if (accept === CF_SENML_CBOR) {
      const recs = under.map((k) => {
        const v = this.resources.get(k)!;
        const rec = new Map<number, unknown>([[0, `/${k}`]]);
        rec.set(typeof v === 'string' ? 3 : typeof v === 'boolean' ? 4 : v instanceof Uint8Array ? 8 : 2, v);
        return rec;
      });
      return { code: '2.05', options: [[O_CONTENT_FORMAT, uint(CF_SENML_CBOR)]], payload: cborEncode(recs) };
    }
    // TLV relative to the path asked for (/obj/inst or /obj/inst/res; /obj wraps instances).
    const byRes = new Map<string, string[]>();
    for (const k of under) {
      const p = k.split('/');
      const rkey = p.slice(0, 3).join('/');
      byRes.set(rkey, [...(byRes.get(rkey) ?? []), k]);
    }
    const resTlv = (rkey: string, keys: string[]) => {
      const id = Number(rkey.split('/')[2]);
      if (keys.length === 1 && keys[0] === rkey) return tlv(3, id, valueBytes(this.resources.get(rkey)!));
      return tlv(2, id, Uint8Array.from(keys.flatMap((k) => tlv(1, Number(k.split('/')[3]), valueBytes(this.resources.get(k)!)))));
    };
    let body: number[];
    if (parts.length === 1) {
      const byInst = new Map<number, number[]>();
      for (const [rkey, keys] of byRes) {
        const inst = Number(rkey.split('/')[1]);
        byInst.set(inst, [...(byInst.get(inst) ?? []), ...resTlv(rkey, keys)]);
      }
      body = [...byInst].flatMap(([inst, b]) => tlv(0, inst, Uint8Array.from(b)));
    } else body = [...byRes].flatMap(([rkey, keys]) => resTlv(rkey, keys));
    return { code: '2.05', options: [[O_CONTENT_FORMAT, uint(CF_TLV)]], payload: Uint8Array.from(body) };
  }

  private notifyChanged(key: string): void {
    for (const [tk, o] of this.observers) {
      if (!(key + '/').startsWith(o.path + '/')) continue;
      const r = this.render(o.path, o.accept);
      o.seq += 1;
      const mid = this.nextMid();
      this.lastNotifyMid.set(tk, mid);
      void this.o.link.send(encode({ type: CON, code: code(r.code), mid, token: o.token, options: [[O_OBSERVE, uint(o.seq)], ...(r.options ?? [])], payload: r.payload ?? new Uint8Array(0) }));
    }
  }

  private set(key: string, v: Value): void {
    this.resources.set(key, v);
    this.notifyChanged(key);
  }

  private firmware(state: number, result: number): void {
    this.firmwareEvents.push({ state, result });
    this.resources.set('5/0/5', result);
    this.set('5/0/3', state);
    this.notifyChanged('5/0/5');
  }

  private async serve(m: Msg): Promise<{ code: string; options?: [number, Uint8Array][]; payload?: Uint8Array }> {
    const path = opts(m, O_URI_PATH).map(text);
    const key = path.join('/');
    const cf = opt(m, O_CONTENT_FORMAT);
    const format = cf ? readUint(cf) : CF_TEXT;
    switch (m.code) {
      case 1: {
        const accept = opt(m, O_ACCEPT);
        const a = accept ? readUint(accept) : CF_TLV;
        const r = this.render(key, a);
        const obs = opt(m, O_OBSERVE);
        const tk = Buffer.from(m.token).toString('hex');
        if (obs && readUint(obs) === 0 && r.code === '2.05') {
          this.observers.set(tk, { token: m.token, path: key, accept: a, seq: 1 });
          return { ...r, options: [[O_OBSERVE, uint(1)], ...(r.options ?? [])] };
        }
        if (obs && readUint(obs) === 1) this.observers.delete(tk);
        return r;
      }
      case 3: // PUT: Write (replace), Bootstrap-Write
      case 2: {
        if (m.code === 2 && key === 'bs') {
          this.bootstrapFinished = true;
          this.bsWaiter?.();
          return { code: '2.04' };
        }
        if (m.code === 2 && path.length === 3) return this.execute(key);
        if (key === '5/0/0') return this.acceptManifest(m.payload);
        if (key === '5/0/1') {
          if (format !== CF_TEXT) return { code: '4.15' };
          return this.startDownload(text(m.payload));
        }
        if (format === CF_TLV) this.writeTlv(path, m.payload);
        else if (format === CF_SENML_CBOR) {
          for (const rec of cborDecode(m.payload, { useMaps: true }) as Map<number, unknown>[]) this.set(String(rec.get(0)).replace(/^\//, ''), (rec.get(2) ?? rec.get(3) ?? rec.get(4) ?? rec.get(8)) as Value);
        } else if (path.length === 3) this.set(key, format === CF_OPAQUE ? m.payload : text(m.payload));
        else return { code: '4.15' };
        return { code: '2.04' };
      }
      case 4: // DELETE: Bootstrap-Delete of / or /0, /1
        for (const k of [...this.resources.keys()]) if (key === '' || k.startsWith(`${key}/`)) if (k.startsWith('0/') || k.startsWith('1/')) this.resources.delete(k);
        return { code: '2.02' };
      default:
        return { code: '4.05' };
    }
  }

  private writeTlv(path: string[], payload: Uint8Array): void {
    const [obj, inst] = path;
    const put = (i: string, entries: ReturnType<typeof parseTlv>) => {
      for (const e of entries) {
        if (e.kind === 3) this.resources.set(`${obj}/${i}/${e.id}`, this.typed(Number(obj), e.id, e.value));
        else if (e.kind === 2) for (const ri of parseTlv(e.value)) this.resources.set(`${obj}/${i}/${e.id}/${ri.id}`, this.typed(Number(obj), e.id, ri.value));
      }
    };
    const entries = parseTlv(payload);
    if (inst === undefined) for (const e of entries) put(String(e.id), parseTlv(e.value));
    else put(inst, entries);
  }

  /** The types of the resources the server writes to this device (Security, Server). */
  private typed(obj: number, res: number, b: Uint8Array): Value {
    const strings: Record<number, number[]> = { 0: [0], 1: [7] };
    const opaque: Record<number, number[]> = { 0: [3, 4, 5] };
    const bools: Record<number, number[]> = { 0: [1], 1: [6] };
    if (strings[obj]?.includes(res)) return text(b);
    if (opaque[obj]?.includes(res)) return b;
    if (bools[obj]?.includes(res)) return b[0] === 1;
    return tlvInt(b);
  }

  private acceptManifest(envelope: Uint8Array): Promise<{ code: string; payload?: Uint8Array }> | { code: string; payload?: Uint8Array } {
    return (async () => {
      try {
        await verifyEnvelope(envelope, { trust: this.o.trust ?? [], device: this.o.device ?? {} });
      } catch (e) {
        this.firmware(0, 5);
        return { code: '4.00', payload: utf8(`manifest refused: ${(e as Error).message}`.slice(0, 200)) };
      }
      this.manifest = envelope;
      this.resources.set('5/0/5', 0);
      return { code: '2.04' };
    })();
  }

  private startDownload(uri: string): { code: string } {
    this.resources.set('5/0/1', uri);
    if (uri === '') return { code: '2.04' };
    const manifest = this.manifest;
    if (!manifest) {
      setImmediate(() => this.firmware(0, 6));
      return { code: '2.04' };
    }
    const u = /^coaps?:\/\/[^/]+\/(.*)$/.exec(uri);
    if (!u) {
      setImmediate(() => this.firmware(0, 7));
      return { code: '2.04' };
    }
    setImmediate(async () => {
      this.firmware(1, 0);
      let image: Uint8Array;
      try {
        image = await this.download(u[1]!.split('/'));
      } catch {
        this.firmware(0, 4);
        return;
      }
      try {
        verifyGlazeBinding(manifest, createHash('sha256').update(image).digest('hex'), { trust: this.o.trust ?? [] });
      } catch {
        this.firmware(0, 5);
        return;
      }
      this.firmwareImage = image;
      this.firmware(2, 0);
    });
    return { code: '2.04' };
  }

  private execute(key: string): { code: string } {
    if (key === '5/0/2') {
      if (this.resources.get('5/0/3') !== 2 || !this.firmwareImage) return { code: '4.05' };
      setImmediate(() => {
        this.firmware(3, 0);
        this.set('3/0/3', createHash('sha256').update(this.firmwareImage!).digest('hex').slice(0, 16));
        this.firmware(0, 1);
      });
      return { code: '2.04' };
    }
    if (key === '1/0/8') {
      setImmediate(() => void this.update().catch(() => {}));
      return { code: '2.04' };
    }
    if (key === '3/0/4') return { code: '2.04' };
    return { code: '4.05' };
  }
}

export const SIM_CONTENT_FORMATS = { TEXT: CF_TEXT, LINK: CF_LINK, OPAQUE: CF_OPAQUE, SENML_CBOR: CF_SENML_CBOR, TLV: CF_TLV } as const;
