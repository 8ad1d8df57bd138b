/** @tips/trust — the TIPS PKI (CA, CSRs, certs-only PKCS#7) and the device-side trust list (S5, S6). No I/O. */
export * from './pki.ts';
export * from './trust-list.ts';
export * from './reenrollment.ts';
export * from './token.ts';
export * from './leaf.ts';
