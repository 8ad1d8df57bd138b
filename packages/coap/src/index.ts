/** @tips/coap — CoAP (RFC 7252, 7959, 7641): codec, transport contract and endpoint. */
export { type Block, blockSize, decodeBlock, encodeBlock, MAX_BLOCK_NUM, szxOf } from './block.ts';
export {
  ACK_RANDOM_FACTOR,
  ACK_TIMEOUT_MS,
  CODE_NAMES,
  CONTENT_FORMAT,
  type CoapMethod,
  EXCHANGE_LIFETIME_MS,
  MAX_RETRANSMIT,
  OPTION,
  TYPE_ACK,
  TYPE_CON,
  TYPE_NON,
  TYPE_RST,
} from './constants.ts';
export { CoapExchangeError, CoapFormatError, type CoapFormatErrorCode } from './errors.ts';
export {
  type CoapMessage,
  type CoapOption,
  type CoapType,
  codeOf,
  codeString,
  decodeMessage,
  decodeUint,
  encodeMessage,
  encodeUint,
  optionUint,
  optionValues,
} from './message.ts';
export {
  type CoapHandler,
  type CoapMetrics,
  type CoapPayloadReader,
  type CoapRequest,
  type CoapResponse,
  CoapServer,
  type CoapServerOptions,
  type OutgoingRequest,
} from './server.ts';
export { type Block2Offload, type DatagramPeer, type DatagramTransport, type PeerIdentity, udpPeer, udpTransport } from './transport.ts';
export { type MemoryPeer, type MemoryTransport, memoryTransport } from './memory.ts';
