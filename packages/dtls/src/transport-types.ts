/** The transport shape of CONTRACT E, owned by @tips/coap: this package implements it over DTLS. */
export type { Block2Offload, DatagramPeer, DatagramTransport, PeerIdentity } from '@tips/coap';
