/**
 * The master's CoAP resources for constrained metals (S13, CONTRACT F): the metal API of the Update
 * Manager over CoAP with CBOR bodies, on a CoapServer built over a DatagramTransport that proved
 * each peer's identity (DTLS from @tips/dtls; never plain UDP in the master). Every request is
 * authenticated again here (`ConstrainedService.principal`) and authorized exactly as on
 * /api/metal/v1 by the same UpdateService calls, without the PoP token: the DTLS session is the proof
 * (docs/THREAT-MODEL.md).
 */
import { createHash } from 'node:crypto';
import type { SpaceId, TipsId } from '@tips/core';
import { type CoapRequest, type CoapResponse, CoapServer, type CoapServerOptions, type DatagramTransport } from '@tips/coap';
import { type CborValue, decodeCbor, encodeCbor } from '@tips/suit';
import type { Logger } from 'pino';
import type { DomainEvents } from '../../events.ts';
import { DomainError, statusOf } from '../../http/errors.ts';
import type { MetalPrincipal } from '../enrollment/model.ts';
import type { SpaceService } from '../spaces/service.ts';
import { MAX_TAMPER_CHANGES, TAMPER_KINDS, type TamperChange } from '../updates/model.ts';
import type { ProfileInput, UpdateService } from '../updates/service.ts';
import { ConstrainedError } from './errors.ts';
import { CBOR_FORMAT, COSE_SIGN1_FORMAT, OCTET_STREAM_FORMAT } from './model.ts';
import type { ConstrainedService } from './service.ts';
import { BlobTransfers, DEFAULT_TRANSFER_LIMITS, type TransferLimits } from './transfers.ts';

export interface ConstrainedDeps {
  constrained: ConstrainedService;
  updates: UpdateService;
  spaces: SpaceService;
  events: DomainEvents;
}

export interface ConstrainedEndpoint {
  /** The endpoint: devicemgmt (LwM2M) adds `/rd` and `/bs` on it. */
  coap: CoapServer;
  /** The notifications of the last Glaze change (tests wait on it). */
  lastNotify: Promise<void>;
  close(): Promise<void>;
}

/** HTTP statuses of the domain tables, as CoAP response codes (RFC 7252 §12.1.2, RFC 8132 for 4.22). */
const COAP_OF_STATUS: Record<number, string> = { 400: '4.00', 401: '4.01', 403: '4.03', 404: '4.04', 409: '4.09', 413: '4.13', 415: '4.15', 416: '4.02', 422: '4.22' };

const etagOf = (bytes: Uint8Array) => new Uint8Array(createHash('sha256').update(bytes).digest().subarray(0, 8));
const cbor = (value: CborValue): CoapResponse => {
  const payload = encodeCbor(value);
  return { code: '2.05', contentFormat: CBOR_FORMAT, etag: etagOf(payload), payload };
};
const map = (o: Record<string, CborValue>): Map<CborValue, CborValue> => new Map(Object.entries(o));

/**
 * Builds the CoapServer on `transport` and registers the metal resources. The caller owns the
 * transport's construction (DTLS with `constrained.pskLookup` and the CA), this function its use.
 */
export function startConstrained(
  opts: ConstrainedDeps & { transport: DatagramTransport; logger: Logger; masterUri?: () => string | undefined; coap?: Partial<Omit<CoapServerOptions, 'logger'>>; transfers?: Partial<TransferLimits> },
): ConstrainedEndpoint {
  const { constrained, updates, spaces, events, logger } = opts;
  const coap = new CoapServer(opts.transport, { logger, metrics: constrained.coapMetrics(), ...opts.coap });
  /** The metal each session proved last, for routing notifications (requests re-authenticate anyway). */
  const metalOfPeer = new Map<string, string>();
  let closed = false;

  const refusal = (e: unknown, req: CoapRequest): CoapResponse => {
    if (!(e instanceof DomainError)) throw e;
    const code = COAP_OF_STATUS[statusOf(e)] ?? '5.00';
    if (code === '5.00') throw e;
    if (code === '4.01' || code === '4.03') {
      logger.warn({ event: 'security', code: e.code, peer: req.peer.key, path: req.path.join('/') }, 'coap: metal refused');
    }
    const error: Record<string, CborValue> = { code: e.code, message: e.message };
    if (e.field) error.field = e.field;
    return { code, contentFormat: CBOR_FORMAT, payload: encodeCbor(map({ error: map(error) })) };
  };

  const resource =
    (fn: (metal: MetalPrincipal, req: CoapRequest) => Promise<CoapResponse>) =>
    async (req: CoapRequest): Promise<CoapResponse> => {
      try {
        const metal = await constrained.principal(req.peer);
        metalOfPeer.delete(req.peer.key);
        metalOfPeer.set(req.peer.key, metal.metalId);
        if (metalOfPeer.size > 100_000) metalOfPeer.delete(metalOfPeer.keys().next().value as string);
        return await fn(metal, req);
      } catch (e) {
        return refusal(e, req);
      }
    };

  coap.route(
    'PUT',
    '/profile',
    resource(async (metal, req) => {
      requireFormat(req, CBOR_FORMAT);
      await updates.putProfile(metal, profileFromCbor(decodeBody(req)));
      return { code: '2.04' };
    }),
  );

  coap.route(
    'GET',
    '/work',
    resource(async (metal, req) => {
      requireAccept(req, CBOR_FORMAT);
      const phase = req.query.find(([k]) => k === 'phase')?.[1];
      if (phase !== '2' && phase !== '3') throw new ConstrainedError('invalid_body', 'give ?phase=2 or ?phase=3', 'phase');
      const w = await updates.work(metal, Number(phase) as 2 | 3);
      return cbor(
        map({
          items: w.items.map((i) =>
            map({
              spaceId: i.spaceId,
              spaceName: i.spaceName,
              phase: i.phase,
              glaze: map({ ...i.glaze }),
              manifest: new Uint8Array(Buffer.from(i.manifest, 'base64')),
              blobPath: `/glazes/${i.glaze.id}/blob`,
              interfaces: i.interfaces.map((x) => map({ name: x.name, mac: x.mac, addresses: x.addresses })),
            }),
          ),
          notify: w.notify ? map(w.notify) : null,
          rollbacks: w.rollbacks.map((r) => map({ ...r })),
        }),
      );
    }),
    { observable: true },
  );

  // Block2 transfers of payloads: the principal, the Glaze and a read-ahead window are kept per
  // (DTLS session, Glaze) and re-checked on every revocation signal and at least every second
  // (transfers.ts); the first block and every re-check go the whole way as any request does.
  const transfers = new BlobTransfers(() => Date.now(), { ...DEFAULT_TRANSFER_LIMITS, ...opts.transfers });
  const sweepTimer = setInterval(() => transfers.sweep(), 10_000);
  sweepTimer.unref();
  // A revocation signal also ends every Block2 offload of the transport (the native fast path of
  // @tips/dtls): the next block of every transfer comes back here and re-authenticates.
  const revokeTransfers = () => {
    transfers.revoke();
    coap.cancelOffloads();
  };
  constrained.onAccessChanged(revokeTransfers);
  for (const name of ['metal.access.revoked', 'metal.deleted', 'space.glaze.changed', 'space.membership.changed', 'space.deleted'] as const) events.on(name, revokeTransfers);
  coap.route('GET', '/glazes/:id/blob', async (req) => {
    try {
      requireAccept(req, OCTET_STREAM_FORMAT);
      const key = `${req.peer.key}|${req.params.id ?? ''}`;
      const found = transfers.lookup(key);
      constrained.transferLookup(found.result);
      let t = found.result === 'hit' ? found.transfer : undefined;
      if (!t) {
        const metal = await constrained.principal(req.peer);
        metalOfPeer.delete(req.peer.key);
        metalOfPeer.set(req.peer.key, metal.metalId);
        t = transfers.start(key, metal, await updates.blobGlaze(metal, req.params.id ?? ''), found.result === 'recheck' ? found.stale : undefined);
      }
      const transfer = t;
      return {
        code: '2.05',
        contentFormat: OCTET_STREAM_FORMAT,
        etag: transfer.etag,
        // Each Block2 request is served from the transfer's window (synchronously); a miss reads the next window.
        payload: {
          size: transfer.glaze.size,
          read: (offset, length) =>
            transfers.read(transfer, offset, length, async (start, end) => {
              const stream = await updates.openBlob(transfer.metal, transfer.glaze, { start, end });
              const chunks: Buffer[] = [];
              for await (const c of stream) chunks.push(c as Buffer);
              return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
            }),
          whole: () => transfers.wholeOf(transfer),
        },
        // The transport may serve the next blocks itself until this transfer's next re-check (and not at
        // all once a revocation signal moved the generation on: cancelOffloads above ends the others).
        offloadUntil: () => transfers.offloadDeadline(transfer),
      };
    } catch (e) {
      return refusal(e, req);
    }
  });

  coap.route(
    'GET',
    '/trust-list',
    resource(async (metal, req) => {
      requireAccept(req, CBOR_FORMAT);
      const bytes = await updates.trustList(metal, opts.masterUri?.());
      return { code: '2.05', contentFormat: CBOR_FORMAT, etag: etagOf(bytes), payload: bytes };
    }),
  );

  coap.route(
    'POST',
    '/reports',
    resource(async (metal, req) => {
      requireFormat(req, COSE_SIGN1_FORMAT);
      await updates.report(metal, req.payload);
      return { code: '2.04' };
    }),
  );

  coap.route(
    'POST',
    '/tamper',
    resource(async (metal, req) => {
      requireFormat(req, CBOR_FORMAT);
      const changes = tamperFromCbor(decodeBody(req));
      logger.warn({ event: 'security', code: 'tamper', metal: metal.metalId, changes: changes.length }, 'tamper report (coap)');
      const r = await updates.tamper(metal, changes);
      return { code: '2.04', contentFormat: CBOR_FORMAT, payload: encodeCbor(map({ eventId: r.eventId, gateways: r.gateways })) };
    }),
  );

  const endpoint: ConstrainedEndpoint = {
    coap,
    lastNotify: Promise.resolve(),
    async close() {
      closed = true;
      clearInterval(sweepTimer);
      await coap.close();
    },
  };
  const notifyMetals = (metalIds: Set<string>) => {
    endpoint.lastNotify = coap
      .notify('/work', (peer) => metalIds.has(metalOfPeer.get(peer.key) ?? ''))
      .catch((e) => logger.error({ err: e }, 'coap: /work notifications failed'));
  };
  // A Glaze set on a Space changes /work of its members; a metal joining a Space changes its own.
  events.on('space.glaze.changed', async (e) => {
    if (closed || coap.observers('/work').length === 0) return;
    notifyMetals(new Set<string>(await spaces.memberIds(e.spaceId as SpaceId)));
  });
  events.on('space.membership.changed', async (e) => {
    if (closed || coap.observers('/work').length === 0) return;
    notifyMetals(new Set<string>([e.metalId as TipsId]));
  });
  return endpoint;
}

function requireFormat(req: CoapRequest, format: number): void {
  if (req.contentFormat !== format) {
    throw new ConstrainedError('unsupported_content_format', `send Content-Format ${format}${req.contentFormat === undefined ? '' : `, not ${req.contentFormat}`}`, 'content-format');
  }
}

function requireAccept(req: CoapRequest, format: number): void {
  if (req.accept !== undefined && req.accept !== format) throw new ConstrainedError('not_acceptable', `this resource is Content-Format ${format}`, 'accept');
}

function decodeBody(req: CoapRequest): Map<CborValue, CborValue> {
  let v: CborValue;
  try {
    v = decodeCbor(req.payload);
  } catch (e) {
    throw new ConstrainedError('invalid_body', `the body is not strict CBOR: ${(e as Error).message}`, 'body');
  }
  if (!(v instanceof Map)) throw new ConstrainedError('invalid_body', 'the body must be a CBOR map', 'body');
  return v;
}

/** A CBOR map with exactly these text keys (optional ones may be absent). */
function fields(v: CborValue, path: string, keys: string[]): Map<CborValue, CborValue> {
  if (!(v instanceof Map)) throw new ConstrainedError('invalid_body', `${path} must be a map`, path);
  for (const k of v.keys()) {
    if (typeof k !== 'string' || !keys.includes(k)) throw new ConstrainedError('invalid_body', `${path}: unknown key ${JSON.stringify(String(k)).slice(0, 40)}`, path);
  }
  return v;
}
function str(v: CborValue, path: string, max: number): string {
  if (typeof v !== 'string' || v.length > max) throw new ConstrainedError('invalid_body', `${path} must be a text string of at most ${max} characters`, path);
  return v;
}
function arr(v: CborValue, path: string, max: number, min = 0): CborValue[] {
  if (!Array.isArray(v) || v.length > max || v.length < min) throw new ConstrainedError('invalid_body', `${path} must be an array of ${min} to ${max} items`, path);
  return v;
}
const PROTOCOLS = ['https', 'mqtt', 'coap'];

/** The same body as PUT /api/metal/v1/profile, as a CBOR map; `coap` is a protocol too. */
export function profileFromCbor(m: Map<CborValue, CborValue>): ProfileInput {
  fields(m, 'body', ['vendorId', 'classId', 'glazes', 'interfaces', 'protocols']);
  const nullable = (k: string) => (m.get(k) === null ? null : str(m.get(k) as CborValue, k, 64));
  return {
    vendorId: nullable('vendorId'),
    classId: nullable('classId'),
    glazes: arr(m.get('glazes') as CborValue, 'glazes', 256).map((g, i) => {
      const p = `glazes[${i}]`;
      const x = fields(g, p, ['id', 'name', 'version', 'sequence']);
      const seq = x.get('sequence');
      const sequence = typeof seq === 'bigint' ? Number(seq) : seq;
      if (typeof sequence !== 'number' || !Number.isSafeInteger(sequence) || sequence < 0) throw new ConstrainedError('invalid_body', `${p}.sequence must be a non-negative integer`, `${p}.sequence`);
      return { id: str(x.get('id') as CborValue, `${p}.id`, 64), name: str(x.get('name') as CborValue, `${p}.name`, 64), version: str(x.get('version') as CborValue, `${p}.version`, 64), sequence };
    }),
    interfaces: arr(m.get('interfaces') as CborValue, 'interfaces', 64).map((v, i) => {
      const p = `interfaces[${i}]`;
      const x = fields(v, p, ['name', 'mac', 'addresses']);
      return {
        name: str(x.get('name') as CborValue, `${p}.name`, 64),
        mac: str(x.get('mac') as CborValue, `${p}.mac`, 64),
        addresses: arr(x.get('addresses') as CborValue, `${p}.addresses`, 32).map((a, j) => str(a, `${p}.addresses[${j}]`, 64)),
      };
    }),
    protocols: arr(m.get('protocols') as CborValue, 'protocols', 4).map((v, i) => {
      const s = str(v, `protocols[${i}]`, 16);
      if (!PROTOCOLS.includes(s)) throw new ConstrainedError('invalid_body', `protocols[${i}] must be one of ${PROTOCOLS.join(', ')}`, `protocols[${i}]`);
      return s;
    }),
  };
}

export function tamperFromCbor(m: Map<CborValue, CborValue>): TamperChange[] {
  fields(m, 'body', ['changes']);
  return arr(m.get('changes') as CborValue, 'changes', MAX_TAMPER_CHANGES, 1).map((v, i) => {
    const p = `changes[${i}]`;
    const x = fields(v, p, ['path', 'kind', 'detail']);
    const kind = str(x.get('kind') as CborValue, `${p}.kind`, 16) as TamperChange['kind'];
    if (!TAMPER_KINDS.includes(kind)) throw new ConstrainedError('invalid_body', `${p}.kind must be one of ${TAMPER_KINDS.join(', ')}`, `${p}.kind`);
    return { path: str(x.get('path') as CborValue, `${p}.path`, 4096), kind, detail: str(x.get('detail') as CborValue, `${p}.detail`, 4096) };
  });
}
