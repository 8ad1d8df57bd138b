/**
 * The native socket of @tips/dtls (packages/dtls/native/tips_dtls.c, built by node-gyp at `npm install`):
 * a UDP socket on Node's own event loop that hands every datagram to JS, except the Block2 continuations
 * of offloaded transfers, which it answers itself (see the C file's header and docs/ARCHITECTURE.md).
 * `loadNative()` is undefined when the addon is not built or TIPS_DTLS_NATIVE=0: the server then uses
 * node:dgram and answers everything in JS, as before.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export interface NativeStats {
  blocksServed: number;
  datagramsToJs: number;
  offloadsStarted: number;
  offloadsCancelled: number;
  offloadsExpired: number;
  offloadsDropped: number;
  offloadsRefused: number;
  offloadsActive: number;
  offloadBytes: number;
  /** Datagrams from a peer with an offload that went to JS, by why: not one epoch-1 application_data record new to the window, */
  passedNotRecord: number;
  /** … not authentic (CCM tag), */
  passedNotAuthentic: number;
  /** … not a CoAP CON GET with a Block2 option and no payload, */
  passedNotBlockGet: number;
  /** … other options than the offloaded request's, */
  passedOtherOptions: number;
  /** … a block outside the representation, or its last block. */
  passedBlockOutOfRange: number;
}

export type NativeHandle = { readonly __brand: 'tips_dtls_socket' };

export interface NativeAddon {
  open(host: string, port: number, ipv6: boolean, onMessage: (data: Buffer, address: string, port: number) => void, maxOffloads: number, maxBytes: number): NativeHandle;
  address(h: NativeHandle): [string, number];
  /** errno, 0 when sent */
  send(h: NativeHandle, data: Uint8Array, address: string, port: number): number;
  offload(
    h: NativeHandle,
    address: string,
    port: number,
    state: Uint8Array,
    epoch: number,
    readKey: Uint8Array,
    readSalt: Uint8Array,
    writeKey: Uint8Array,
    writeSalt: Uint8Array,
    requestOptions: Uint8Array,
    responsePrefix: Uint8Array,
    responseLast: number,
    code: number,
    maxSzx: number,
    payload: Uint8Array,
    deadlineMs: number,
  ): boolean;
  drop(h: NativeHandle, address: string, port: number): boolean;
  cancelAll(h: NativeHandle): number;
  stats(h: NativeHandle): NativeStats;
  close(h: NativeHandle): void;
}

/** Where node-gyp puts it, seen from src/ (sources, tsx) and from dist/<app>/ (the esbuild bundles). */
const CANDIDATES = ['../native/build/Release/tips_dtls.node', '../../packages/dtls/native/build/Release/tips_dtls.node'];

let cached: { addon?: NativeAddon; why?: string } | undefined;

/** The addon, or why not (TIPS_DTLS_NATIVE=0, or not built). */
export function loadNative(): { addon?: NativeAddon; why?: string } {
  if (process.env.TIPS_DTLS_NATIVE === '0') return { why: 'TIPS_DTLS_NATIVE=0' };
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  for (const rel of CANDIDATES) {
    const path = fileURLToPath(new URL(rel, import.meta.url));
    if (!existsSync(path)) continue;
    try {
      cached = { addon: require(path) as NativeAddon };
      return cached;
    } catch (e) {
      cached = { why: `${path}: ${(e as Error).message}` };
      return cached;
    }
  }
  cached = { why: 'packages/dtls/native is not built (npm install runs node-gyp; needs a C compiler)' };
  return cached;
}
