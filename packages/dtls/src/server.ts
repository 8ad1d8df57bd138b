/**
 * The DTLS server: a UDP socket plus the stateless cookie check in front of per-peer state. A datagram
 * from an address with no handshake in flight and no session is answered (HelloVerifyRequest) or
 * dropped — never stored — until it proves it can receive at its source address.
 *
 * The socket is the native one of packages/dtls/native (native.ts) when it is built, else node:dgram
 * (TIPS_DTLS_NATIVE=0 chooses it). With the native socket, `offloadBlock2` lets the CoAP layer hand the
 * rest of a Block2 transfer of an in-memory representation to C, which answers those requests without
 * entering JS; everything else reaches this file exactly as with node:dgram.
 */
import { createSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { Logger } from 'pino';
import { type Connection as Conn, Connection, type LocalCertificate, type SessionState, helloVerifyRequestDatagram, peekClientHello } from './connection.ts';
import { CookieJar } from './cookie.ts';
import { DtlsError } from './errors.ts';
import { type NativeHandle, type NativeStats, loadNative } from './native.ts';
import type { Block2Offload, DatagramPeer, DatagramTransport } from './transport-types.ts';

export interface DtlsServerOptions {
  host: string;
  port: number;
  logger: Logger;
  psk?: (identity: string) => Promise<Uint8Array | undefined>;
  certificate?: LocalCertificate;
  trustAnchors?: Uint8Array[];
  verifyPeer?: (chain: Uint8Array[]) => Promise<void>;
  maxHandshakesInFlight?: number;
  sessionTimeoutMs?: number;
  maxSessions?: number;
  handshakeTimeoutMs?: number;
  mtu?: number;
  /** Use the native socket when it is built (default true; TIPS_DTLS_NATIVE=0 turns it off too). */
  native?: boolean;
  /** Block2 offloads held at once, and the payload bytes they may pin (each shared buffer counted once). */
  maxOffloads?: number;
  maxOffloadBytes?: number;
}

export interface DtlsServerStats {
  handshakesInFlight: number;
  sessions: number;
  cachedSessions: number;
  helloVerifyRequestsSent: number;
  handshakesRefused: number;
  handshakesDropped: number;
  /** Which socket serves the port. */
  socket: 'native' | 'dgram';
  /** The native fast path's counters (native socket only). */
  native?: NativeStats;
}

export interface DtlsServer extends DatagramTransport {
  stats(): DtlsServerStats;
}

interface Session {
  conn: Conn;
  peer: DatagramPeer;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const SENT: Promise<void> = Promise.resolve();
let warnedNoNative = false;

export async function createDtlsServer(opts: DtlsServerOptions): Promise<DtlsServer> {
  const log = opts.logger.child({ component: 'dtls' });
  const maxHandshakes = opts.maxHandshakesInFlight ?? 64;
  const maxSessions = opts.maxSessions ?? 10_000;
  const sessionTimeoutMs = opts.sessionTimeoutMs ?? 5 * 60_000;
  // Peers are always IP literals: resolve them synchronously instead of dns.lookup's deferred callback per datagram.
  const family = isIPv6(opts.host) ? 6 : 4;
  const native = opts.native === false ? { why: 'native: false' } : loadNative();
  const addon = native.addon;
  if (!addon && !warnedNoNative && opts.native !== false && process.env.TIPS_DTLS_NATIVE !== '0') {
    warnedNoNative = true;
    log.warn({ reason: native.why }, 'dtls: native socket unavailable, using node:dgram (no Block2 fast path)');
  }
  let handle: NativeHandle | undefined;
  const socket = addon
    ? undefined
    : createSocket({
        type: family === 6 ? 'udp6' : 'udp4',
        lookup: (address: string, _family: unknown, cb: (err: Error | null, address: string, family: number) => void) => cb(null, address, family),
      } as Parameters<typeof createSocket>[0]);
  const cookies = new CookieJar();
  const handshakes = new Map<string, Conn>();
  const sessions = new Map<string, Session>();
  const sessionCache = new Map<string, SessionState>();
  const counters = { helloVerifyRequestsSent: 0, handshakesRefused: 0, handshakesDropped: 0 };
  let dataHandler: (peer: DatagramPeer, data: Uint8Array) => void = () => {};
  let closedHandler: (peer: DatagramPeer) => void = () => {};
  let serial = 0;

  // No completion callback: one sendto per datagram and nothing queued behind it (UDP is lossy: a failed
  // send is a lost datagram that the peer's retransmission covers, as before when it was only logged at debug).
  const sendTo = (address: string, port: number) => (datagram: Uint8Array) => {
    if (handle) (addon as NonNullable<typeof addon>).send(handle, datagram, address, port);
    else socket?.send(datagram, port, address);
  };
  /** The peer's session ends or is being replaced: its Block2 offload (keys, payload) goes with it. */
  const dropOffload = (address: string, port: number) => {
    if (handle) (addon as NonNullable<typeof addon>).drop(handle, address, port);
  };

  const dropSession = (key: string, s: Session) => {
    if (sessions.get(key) !== s) return;
    sessions.delete(key);
    dropOffload(s.peer.address, s.peer.port);
    closedHandler(s.peer);
  };

  const startHandshake = (address: string, port: number, key: string, msg: Uint8Array) => {
    const peeked = peekClientHello(msg);
    if (!peeked) return;
    if (!cookies.valid(address, port, peeked.hello)) {
      counters.helloVerifyRequestsSent++;
      sendTo(address, port)(helloVerifyRequestDatagram(peeked.record.sequence, cookies.issue(address, port, peeked.hello)));
      return;
    }
    if (handshakes.size >= maxHandshakes) {
      counters.handshakesDropped++;
      log.warn({ address, port, inFlight: handshakes.size }, 'dtls handshake dropped: too many in flight');
      return;
    }
    const conn: Conn = new Connection(
      {
        role: 'server',
        pskLookup: opts.psk,
        certificate: opts.certificate,
        trustAnchors: opts.trustAnchors,
        verifyPeer: opts.verifyPeer,
        findSession: (id) => sessionCache.get(hex(id)),
        mtu: opts.mtu,
        handshakeTimeoutMs: opts.handshakeTimeoutMs,
      },
      {
        send: sendTo(address, port),
        data: (d) => {
          const s = sessions.get(key);
          if (s && s.conn === conn) dataHandler(s.peer, d);
        },
        established: (state) => {
          handshakes.delete(key);
          const old = sessions.get(key);
          if (old) {
            old.conn.close();
            dropSession(key, old);
          }
          if (sessions.size >= maxSessions) {
            let oldest: [string, Session] | undefined;
            for (const e of sessions) if (!oldest || e[1].conn.lastActivity < oldest[1].conn.lastActivity) oldest = e;
            if (oldest) {
              oldest[1].conn.close();
              dropSession(oldest[0], oldest[1]);
            }
          }
          const peer: DatagramPeer = { key: `${key}#${++serial}`, address, port, identity: state.identity };
          sessions.set(key, { conn, peer });
          if (state.id.length > 0) {
            sessionCache.delete(hex(state.id));
            sessionCache.set(hex(state.id), state);
            if (sessionCache.size > maxSessions) sessionCache.delete(sessionCache.keys().next().value as string);
          }
          log.info({ peer: peer.key, identity: state.identity.kind === 'psk' ? state.identity.identity : state.identity.kind, suite: state.suite }, 'dtls session established');
        },
        closed: (err) => {
          if (handshakes.get(key) === conn) {
            handshakes.delete(key);
            counters.handshakesRefused++;
            log.info({ address, port, reason: err?.code, message: err?.message }, 'dtls handshake failed');
          }
          const s = sessions.get(key);
          if (s && s.conn === conn) {
            dropSession(key, s);
            log.info({ peer: s.peer.key, reason: err?.code }, 'dtls session closed');
          }
        },
      },
    );
    handshakes.set(key, conn);
    // From here on the address's datagrams go to the handshake (as in onMessage): none to the fast path.
    dropOffload(address, port);
    void conn.acceptClientHello(peeked.hello, peeked.raw, peeked.fragment.messageSeq, peeked.record.sequence);
  };

  const onMessage = (data: Uint8Array, address: string, port: number) => {
    const key = `${address}:${port}`;
    const hs = handshakes.get(key);
    if (hs) {
      void hs.receive(data);
      return;
    }
    try {
      // An epoch-0 ClientHello starts a (new) handshake, even from an address with a session (RFC 6347 §4.2.8).
      if (data[0] === 22 && data[3] === 0 && data[4] === 0) {
        startHandshake(address, port, key, data);
        return;
      }
    } catch (e) {
      if (!(e instanceof DtlsError)) log.warn({ err: (e as Error).message }, 'dtls: unexpected error on a ClientHello');
      return;
    }
    const s = sessions.get(key);
    if (s) void s.conn.receive(data);
  };
  socket?.on('message', (msg, rinfo) => onMessage(msg, rinfo.address, rinfo.port));

  const sweep = setInterval(
    () => {
      const cutoff = Date.now() - sessionTimeoutMs;
      for (const [key, s] of sessions) {
        if (s.conn.lastActivity < cutoff) {
          s.conn.close();
          dropSession(key, s);
        }
      }
    },
    Math.max(100, Math.min(10_000, Math.floor(sessionTimeoutMs / 4))),
  );
  sweep.unref();

  if (addon) {
    try {
      handle = addon.open(opts.host, opts.port, family === 6, onMessage, opts.maxOffloads ?? 256, opts.maxOffloadBytes ?? 64 * 1024 * 1024);
    } catch (e) {
      clearInterval(sweep);
      throw e;
    }
  } else {
    const udp = socket as NonNullable<typeof socket>;
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(opts.port, opts.host, () => {
        udp.off('error', reject);
        resolve();
      });
    });
    udp.on('error', (err) => log.warn({ err: err.message }, 'dtls socket error'));
  }
  const addressOf = (): { address: string; port: number } => {
    if (handle) {
      const [address, port] = (addon as NonNullable<typeof addon>).address(handle);
      return { address, port };
    }
    const a = (socket as NonNullable<typeof socket>).address();
    return { address: a.address, port: a.port };
  };
  const bound = addressOf();
  log.info({ address: bound.address, port: bound.port, socket: handle ? 'native' : 'dgram' }, 'dtls listening');

  return {
    onDatagram(h) {
      dataHandler = h;
    },
    onPeerClosed(h) {
      closedHandler = h;
    },
    send(peer, data) {
      const s = sessions.get(`${peer.address}:${peer.port}`);
      if (!s || s.peer.key !== peer.key) return Promise.reject(new DtlsError('closed', `no DTLS session for ${peer.key}`));
      try {
        s.conn.sendDataNow(data);
      } catch (e) {
        return Promise.reject(e);
      }
      return SENT;
    },
    offloadBlock2(peer: DatagramPeer, o: Block2Offload): boolean {
      if (!handle) return false;
      const s = sessions.get(`${peer.address}:${peer.port}`);
      if (!s || s.peer.key !== peer.key || handshakes.has(`${peer.address}:${peer.port}`)) return false;
      const k = s.conn.offloadKeys();
      if (!k) return false;
      return (addon as NonNullable<typeof addon>).offload(
        handle,
        peer.address,
        peer.port,
        k.state,
        k.epoch,
        k.readKeys.key,
        k.readKeys.salt,
        k.writeKeys.key,
        k.writeKeys.salt,
        o.requestOptions,
        o.responsePrefix,
        o.responseLast,
        o.code,
        o.maxSzx,
        o.payload,
        o.deadline,
      );
    },
    cancelOffloads() {
      if (handle) (addon as NonNullable<typeof addon>).cancelAll(handle);
    },
    address: addressOf,
    stats() {
      const base = { handshakesInFlight: handshakes.size, sessions: sessions.size, cachedSessions: sessionCache.size, ...counters };
      return handle ? { ...base, socket: 'native' as const, native: (addon as NonNullable<typeof addon>).stats(handle) } : { ...base, socket: 'dgram' as const };
    },
    async close() {
      clearInterval(sweep);
      for (const c of handshakes.values()) c.close();
      handshakes.clear();
      for (const [key, s] of sessions) {
        s.conn.close();
        dropSession(key, s);
      }
      if (handle) {
        (addon as NonNullable<typeof addon>).close(handle);
        handle = undefined;
      } else await new Promise<void>((resolve) => (socket as NonNullable<typeof socket>).close(() => resolve()));
    },
  };
}
