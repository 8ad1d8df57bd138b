/**
 * What a secure datagram layer (DTLS, @tips/dtls) — or plain UDP in tests — gives the CoAP layer:
 * datagrams tagged with the peer and the identity that peer proved. The CoAP endpoint never sees
 * keys or handshakes; it authorizes on `peer.identity`.
 */
import { createSocket } from 'node:dgram';

export type PeerIdentity =
  | { kind: 'psk'; identity: string }
  /** DER, leaf first, already verified by the transport against its trust anchors. */
  | { kind: 'certificate'; chain: Uint8Array[] }
  /** Plain UDP: only in tests, never in the master. */
  | { kind: 'none' };

export interface DatagramPeer {
  /** Unique per session, e.g. "1.2.3.4:5000#<n>". */
  readonly key: string;
  readonly address: string;
  readonly port: number;
  readonly identity: PeerIdentity;
}

/**
 * The rest of a Block2 transfer handed to the transport (issue 12, block-wise speed): until `deadline`,
 * a CON GET from the peer whose options equal `requestOptions` once its Block2 option is taken out, asking
 * for a block of `payload` that is not the last one, is answered by the transport itself with exactly the
 * ACK the CoapServer would send (same MID and token; `responsePrefix`, then Block2, then Size2, then the
 * block). Anything else still reaches onDatagram.
 */
export interface Block2Offload {
  /** The request's options except Block2, encoded as in a message (deltas from 0, in order). */
  requestOptions: Uint8Array;
  /** The response's options numbered below Block2 (23), encoded likewise … */
  responsePrefix: Uint8Array;
  /** … and the number of the last of them (0: none). */
  responseLast: number;
  /** The response code (2.05 = 69). */
  code: number;
  /** The endpoint's largest block size exponent (a client's smaller one is honoured, as in render). */
  maxSzx: number;
  /** The whole representation (kept, not copied, by the transport until the offload ends). */
  payload: Uint8Array;
  /** ms since the Unix epoch: from then on every request goes to onDatagram again. */
  deadline: number;
}

export interface DatagramTransport {
  onDatagram(handler: (peer: DatagramPeer, data: Uint8Array) => void): void;
  /** Session closed or expired. */
  onPeerClosed(handler: (peer: DatagramPeer) => void): void;
  send(peer: DatagramPeer, data: Uint8Array): Promise<void>;
  address(): { address: string; port: number };
  close(): Promise<void>;
  /** Optional: serve the next blocks of a Block2 transfer without onDatagram (false: not taken). One per peer; a new one replaces it. */
  offloadBlock2?(peer: DatagramPeer, offload: Block2Offload): boolean;
  /** Optional: ends every offload at once (a revocation signal: the next block goes through the handler again). */
  cancelOffloads?(): void;
}

/**
 * Plain CoAP over UDP (RFC 7252 §6, coap://). For tests only: there is no session, so peers have
 * identity `none` and are keyed by address:port; nothing here authenticates anyone.
 */
export async function udpTransport(opts: { host: string; port: number }): Promise<DatagramTransport> {
  const socket = createSocket(opts.host.includes(':') ? 'udp6' : 'udp4');
  const peers = new Map<string, DatagramPeer>();
  const datagramHandlers: ((peer: DatagramPeer, data: Uint8Array) => void)[] = [];
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(opts.port, opts.host, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  socket.on('message', (msg, rinfo) => {
    const key = `${rinfo.address}:${rinfo.port}`;
    let peer = peers.get(key);
    if (!peer) {
      peer = { key, address: rinfo.address, port: rinfo.port, identity: { kind: 'none' } };
      peers.set(key, peer);
      if (peers.size > 10_000) peers.delete(peers.keys().next().value as string);
    }
    const data = new Uint8Array(msg.buffer, msg.byteOffset, msg.length);
    for (const h of datagramHandlers) h(peer, data);
  });
  // A send to a closed port yields ICMP errors as 'error' events on some platforms; UDP is lossy anyway.
  socket.on('error', () => {});
  let closed = false;
  return {
    onDatagram: (h) => {
      datagramHandlers.push(h);
    },
    onPeerClosed: () => {},
    send: (peer, data) =>
      new Promise<void>((resolve, reject) => {
        if (closed) return reject(new Error('transport closed'));
        socket.send(data, peer.port, peer.address, (err) => (err ? reject(err) : resolve()));
      }),
    address: () => {
      const a = socket.address();
      return { address: a.address, port: a.port };
    },
    close: () =>
      new Promise<void>((resolve) => {
        if (closed) return resolve();
        closed = true;
        socket.close(() => resolve());
      }),
  };
}

/** A UDP peer object for a client-side socket address (tests use it with `CoapServer.request`). */
export function udpPeer(address: string, port: number): DatagramPeer {
  return { key: `${address}:${port}`, address, port, identity: { kind: 'none' } };
}
