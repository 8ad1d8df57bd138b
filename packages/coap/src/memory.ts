/**
 * An in-memory DatagramTransport for unit tests of code built on CoapServer: each `connect` is a
 * "session" with the identity a DTLS transport would have proven. It authenticates nothing and
 * exists only so tests can drive the endpoint without sockets.
 */
import type { DatagramPeer, DatagramTransport, PeerIdentity } from './transport.ts';

export interface MemoryPeer {
  readonly peer: DatagramPeer;
  /** A datagram from this peer to the endpoint. */
  send(data: Uint8Array): void;
  onMessage(handler: (data: Uint8Array) => void): void;
  /** End the session (the transport's onPeerClosed fires). */
  close(): void;
  /** While true, datagrams to this peer are lost. */
  drop: boolean;
}

export interface MemoryTransport extends DatagramTransport {
  connect(identity: PeerIdentity, address?: string, port?: number): MemoryPeer;
}

export function memoryTransport(): MemoryTransport {
  let datagram: ((peer: DatagramPeer, data: Uint8Array) => void)[] = [];
  let closedHandlers: ((peer: DatagramPeer) => void)[] = [];
  const inbox = new Map<string, { peer: MemoryPeer; handlers: ((d: Uint8Array) => void)[] }>();
  let n = 0;
  let closed = false;
  return {
    onDatagram: (h) => {
      datagram.push(h);
    },
    onPeerClosed: (h) => {
      closedHandlers.push(h);
    },
    async send(peer, data) {
      if (closed) throw new Error('transport closed');
      const p = inbox.get(peer.key);
      if (!p || p.peer.drop) return;
      const copy = data.slice();
      setImmediate(() => {
        for (const h of p.handlers) h(copy);
      });
    },
    address: () => ({ address: '192.0.2.1', port: 5684 }),
    async close() {
      closed = true;
      datagram = [];
      closedHandlers = [];
    },
    connect(identity, address = '198.51.100.7', port = 40000 + n) {
      n += 1;
      const peer: DatagramPeer = { key: `${address}:${port}#${n}`, address, port, identity };
      const handlers: ((d: Uint8Array) => void)[] = [];
      const mp: MemoryPeer = {
        peer,
        drop: false,
        send(data) {
          const copy = data.slice();
          setImmediate(() => {
            for (const h of datagram) h(peer, copy);
          });
        },
        onMessage(h) {
          handlers.push(h);
        },
        close() {
          inbox.delete(peer.key);
          for (const h of closedHandlers) h(peer);
        },
      };
      inbox.set(peer.key, { peer: mp, handlers });
      return mp;
    },
  };
}
