/** @tips/coap — CoAP (RFC 7252, 7959, 7641): codec, transport contract and endpoint. Filled in by issue 12. */
export {};
