/**
 * The transport shape of CONTRACT E, declared here until @tips/coap exports it (then this file re-exports).
 * Kept byte-for-byte the contract's shape.
 */
export type PeerIdentity =
  | { kind: 'psk'; identity: string }
  | { kind: 'certificate'; chain: Uint8Array[] /* DER, leaf first, already verified by the transport against its trust anchors */ }
  | { kind: 'none' };
export interface DatagramPeer {
  readonly key: string /* unique per session, e.g. "1.2.3.4:5000#<n>" */;
  readonly address: string;
  readonly port: number;
  readonly identity: PeerIdentity;
}
export interface DatagramTransport {
  onDatagram(handler: (peer: DatagramPeer, data: Uint8Array) => void): void;
  onPeerClosed(handler: (peer: DatagramPeer) => void): void; // session closed / expired
  send(peer: DatagramPeer, data: Uint8Array): Promise<void>;
  address(): { address: string; port: number };
  close(): Promise<void>;
}
