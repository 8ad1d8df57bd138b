/** The DTLS client: one Connection on a connected node:dgram socket. */
import { createSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { Connection, type LocalCertificate, type SessionState } from './connection.ts';
import { DtlsError } from './errors.ts';
import type { PeerIdentity } from './transport-types.ts';
import { Reader, Writer } from './wire.ts';

export interface DtlsClientOptions {
  host: string;
  port: number;
  psk?: { identity: string; key: Uint8Array };
  certificate?: LocalCertificate;
  /** CA certificates (DER) the server's chain must end in; required for certificate suites. */
  trustAnchors?: Uint8Array[];
  /** Extra check of the server chain after it verified against the trust anchors. */
  verifyPeer?: (chain: Uint8Array[]) => Promise<void>;
  /** A value from `session()` of an earlier client: resume it (abbreviated handshake). */
  session?: Uint8Array;
  handshakeTimeoutMs?: number;
  mtu?: number;
}

export interface DtlsClient {
  send(data: Uint8Array): Promise<void>;
  onMessage(h: (d: Uint8Array) => void): void;
  /** The session to resume later; it holds the master secret, so keep it as secret as the PSK. */
  session(): Uint8Array;
  /** True if the handshake was an abbreviated one (resumption). */
  readonly resumed: boolean;
  onClose(h: (err: DtlsError | undefined) => void): void;
  close(): Promise<void>;
}

const SESSION_FORMAT = 1;

export function encodeSession(s: SessionState): Uint8Array {
  const w = new Writer().u8(SESSION_FORMAT).u16(s.suite).u8(s.extendedMasterSecret ? 1 : 0).vector(1, s.id).vector(1, s.masterSecret);
  if (s.identity.kind === 'psk') w.u8(1).vector(2, new TextEncoder().encode(s.identity.identity));
  else w.u8(0);
  return w.finish();
}

export function decodeSession(b: Uint8Array): SessionState {
  const r = new Reader(b, 'session');
  if (r.u8('format') !== SESSION_FORMAT) throw new DtlsError('decode_error', 'session: unknown format');
  const suite = r.u16('suite');
  const extendedMasterSecret = r.u8('ems') === 1;
  const id = r.vector(1, 'id', 1, 32);
  const masterSecret = r.vector(1, 'master_secret', 48, 48);
  const kind = r.u8('identity');
  const identity: PeerIdentity =
    kind === 1 ? { kind: 'psk', identity: new TextDecoder().decode(r.vector(2, 'psk_identity')) } : { kind: 'none' };
  r.end();
  return { id: Uint8Array.from(id), masterSecret: Uint8Array.from(masterSecret), suite, extendedMasterSecret, identity };
}

export async function createDtlsClient(opts: DtlsClientOptions): Promise<DtlsClient> {
  const socket = createSocket({ type: isIPv6(opts.host) ? 'udp6' : 'udp4' });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.connect(opts.port, opts.host, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  let messageHandler: (d: Uint8Array) => void = () => {};
  let closeHandler: (err: DtlsError | undefined) => void = () => {};
  let state: SessionState | undefined;
  let resumed = false;
  const resume = opts.session ? decodeSession(opts.session) : undefined;
  let settle: { resolve: () => void; reject: (e: Error) => void } | undefined;
  const ready = new Promise<void>((resolve, reject) => {
    settle = { resolve, reject };
  });
  const conn = new Connection(
    {
      role: 'client',
      psk: opts.psk,
      certificate: opts.certificate,
      trustAnchors: opts.trustAnchors,
      verifyPeer: opts.verifyPeer,
      resume,
      mtu: opts.mtu,
      handshakeTimeoutMs: opts.handshakeTimeoutMs ?? 15_000,
    },
    {
      send: (d) => socket.send(d, () => {}),
      data: (d) => messageHandler(d),
      established: (s) => {
        state = s;
        resumed = resume !== undefined && Buffer.from(resume.id).equals(Buffer.from(s.id));
        settle?.resolve();
      },
      closed: (err) => {
        settle?.reject(err ?? new DtlsError('closed', 'closed by the peer'));
        closeHandler(err);
        // Let the alert we may just have queued leave before the socket goes.
        setTimeout(() => {
          try {
            socket.close();
          } catch {
            // already closed
          }
        }, 20).unref();
      },
    },
  );
  socket.on('message', (msg) => void conn.receive(new Uint8Array(msg.buffer, msg.byteOffset, msg.length)));
  socket.on('error', () => {});
  conn.start();
  await ready;
  return {
    send: (d) => conn.sendData(d),
    onMessage(h) {
      messageHandler = h;
    },
    onClose(h) {
      closeHandler = h;
    },
    session: () => encodeSession(state as SessionState),
    get resumed() {
      return resumed;
    },
    async close() {
      conn.close();
    },
  };
}
