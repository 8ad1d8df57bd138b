/** @tips/dtls — DTLS 1.2 (RFC 6347, RFC 7925 profile) over node:dgram. Filled in by issue 12. */
export {};
