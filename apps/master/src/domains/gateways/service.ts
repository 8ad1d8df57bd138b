import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { findByRef, type GatewayId, InvalidValueError, isId, newId, type OwnerId, parseName } from '@tips/core';
import { certificateFingerprint, certificateIdentities, issueCertificate, parseCertificate, serialFrom, x509 } from '@tips/trust';
import type { BusHub } from '../../bus/bus.ts';
import { isUniqueViolation } from '../../db/database.ts';
import type { KeysetWindow } from '../../db/keyset.ts';
import type { Clock, Random } from '../../ports.ts';
import { caPem, type MasterCa } from '../enrollment/ca.ts';
import { GatewayError } from './errors.ts';
import { GroupCommit } from './group-commit.ts';
import {
  type ChannelCommand,
  ENROLLMENT_TTL_MS,
  GATEWAY_CERT_LIFETIME_HOURS,
  type Gateway,
  type GatewayCertificate,
  MAX_QUEUED_COMMANDS,
  MAX_TABLE_ROWS,
  type QueuedCommand,
  SIGNATURE_WINDOW_MS,
  type TableSnapshot,
} from './model.ts';
import { canonicalString, readSignedHeaders, verifyCanonical } from './signature.ts';
import type { GatewayStore, NonceUse } from './store.ts';

const ENROLLMENT_PREFIX = 'tge_';
const ENROLLMENT_RE = /^tge_[A-Za-z0-9_-]{43}$/;
/**
 * How long a verified gateway key is reused before the row is read again while the bus is down (a
 * local delete drops it at once); while it is up another replica's delete arrives as
 * `tips.gateway.key` and the longer TTL is only a backstop.
 */
const KEY_CACHE_MS = 5_000;
const KEY_CACHE_BUS_UP_MS = 60_000;
/** lastSeenAt is written at most this often per gateway, not on every request. */
const TOUCH_EVERY_MS = 10_000;
/** How long an mTLS connection's certificate check holds before it is made again (authenticateChannel). */
const CHANNEL_RECHECK_MS = 1_000;

/** Distinct client certificates whose parse is kept (one or two per enrolled gateway). */
const MAX_PARSED_CERTS = 10_000;

interface ParsedCertificate {
  ids: ReturnType<typeof certificateIdentities>;
  serial: string;
  fingerprint: string;
}

/** An authentication refusal that carries, for the security log only, why it was refused. */
export class GatewayAuthError extends GatewayError {
  constructor(readonly why: string) {
    super('gateway_auth_failed', 'gateway authentication failed');
  }
}

/** A gateway's end of the command channel, whatever carries it (a WebSocket in production). */
export interface ChannelSocket {
  send(text: string): void;
  close(code: number, reason: string): void;
}

export interface AuthInput {
  headers: Record<string, string | string[] | undefined>;
  method: string;
  pathWithQuery: string;
  body: Uint8Array | undefined;
  /** Set when the request came over TLS: the client certificate the peer presented, if any. */
  tls?: { peer: { authorized: boolean; der: Uint8Array } | undefined };
}

/** What a gateway gets at enrollment and renewal: its TLS client certificate and the chain to trust. */
export interface IssuedGatewayCertificate {
  certificate: string;
  /** Intermediate then root, PEM: what the gateway verifies the master's server certificate against. */
  caChain: string;
  notAfter: string;
}

export interface GatewayTlsOptions {
  /** The master's CA (the enrollment domain's), which issues gateway certificates. */
  ca: () => Promise<MasterCa>;
  /** Refuse every gateway request that did not come over mTLS (`--gateway-require-tls`). */
  requireTls?: boolean;
  certLifetimeHours?: number;
}

export interface GatewayView extends Omit<Gateway, 'publicKey' | 'ownerId'> {
  enrolled: boolean;
  connected: boolean;
}

const hashToken = (t: string) => createHash('sha256').update(t, 'utf8').digest('hex');

/** Gateways (TIPS-G) of an owner: enrollment, request authentication, table snapshots, command channel. */
export class GatewayService {
  private readonly keys = new Map<GatewayId, { gateway: Gateway; key: KeyObject; loadedAt: number }>();
  private authMetric: { inc(labels: { mode: string; result: string }): void } | undefined;
  /** Wired by the composition root: gateway API authentications by mode (signature, channel) and result. */
  useAuthMetric(m: { inc(labels: { mode: string; result: string }): void }): void {
    this.authMetric = m;
  }
  countAuth(mode: 'signature' | 'channel', result: 'ok' | 'refused'): void {
    this.authMetric?.inc({ mode, result });
  }
  /** Per TLS connection: the gateway its certificate named when last checked. */
  private readonly channels = new WeakMap<object, { gateway: Gateway; checkedAt: number }>();
  /**
   * What a client certificate says, by its DER bytes: X.509 parsing (@peculiar/x509) cost ≈ 1 ms of
   * CPU, paid twice per check before, and a connection presents the same certificate every time.
   * Only the parse is kept; every check still reads the certificate's record (revocation) anew.
   */
  private readonly parsedCerts = new Map<string, ParsedCertificate>();
  private readonly touched = new Map<GatewayId, number>();
  private readonly sockets = new Map<GatewayId, ChannelSocket>();
  private readonly nonces: GroupCommit<NonceUse, boolean>;
  private lastSeq = 0;
  private noncesSinceSweep = 0;
  private tlsOptions: GatewayTlsOptions | undefined;
  private bus: BusHub | undefined;

  constructor(
    private readonly store: GatewayStore,
    private readonly clock: Clock,
    private readonly random: Random,
    private readonly enrollmentTtlMs = ENROLLMENT_TTL_MS,
  ) {
    this.nonces = new GroupCommit((uses) => this.store.rememberNonces(uses));
  }

  /** Gives the service the CA it issues gateway certificates with, and the transport policy. */
  useTls(options: GatewayTlsOptions): void {
    this.tlsOptions = options;
  }

  /**
   * Follows the other replicas: a gateway removed through one is refused by all (its cached key
   * dropped, its channel closed), and a command queued through one is pushed by the replica that
   * holds the gateway's channel. After a bus outage every cached key is read again.
   */
  useBus(bus: BusHub): void {
    this.bus = bus;
    bus.on('tips.gateway.key', (m) => this.forgetGateway(m.gatewayId as GatewayId));
    bus.on('tips.gateway.command', async (m) => {
      const socket = this.sockets.get(m.gatewayId as GatewayId);
      if (!socket) return;
      // Only a command that is in the gateway's queue is pushed: the bus names it, the database says what it is.
      const queued = (await this.store.pending(m.gatewayId as GatewayId)).find((c) => c.id === m.commandId);
      if (queued) socket.send(wire(queued));
    });
    bus.onResync(() => this.keys.clear());
  }

  private forgetGateway(id: GatewayId): void {
    this.keys.delete(id);
    this.touched.delete(id);
    const socket = this.sockets.get(id);
    this.sockets.delete(id);
    socket?.close(4001, 'gateway revoked');
  }

  get requiresTls(): boolean {
    return this.tlsOptions?.requireTls === true;
  }

  /** Creates a gateway record and its one-time enrollment token (returned only here, stored hashed). */
  async create(ownerId: OwnerId, input: { name: string }): Promise<{ gateway: GatewayView; enrollmentToken: string }> {
    const name = parseName(input.name);
    if (await this.store.findByName(ownerId, name)) throw this.nameTaken(name);
    const now = this.clock.now();
    const token = ENROLLMENT_PREFIX + Buffer.from(this.random.bytes(32)).toString('base64url');
    const gateway: Gateway = {
      id: newId('gateway', this.random.bytes(16)),
      ownerId,
      name,
      publicKey: null,
      enrolledName: null,
      enrolledAt: null,
      enrollmentExpiresAt: new Date(now.getTime() + this.enrollmentTtlMs).toISOString(),
      createdAt: now.toISOString(),
      lastSeenAt: null,
    };
    try {
      await this.store.insert(gateway, hashToken(token));
    } catch (err) {
      if (isUniqueViolation(err)) throw this.nameTaken(name);
      throw err;
    }
    return { gateway: this.view(gateway), enrollmentToken: token };
  }

  async list(ownerId: OwnerId, window?: KeysetWindow): Promise<GatewayView[]> {
    return (await this.store.list(ownerId, window)).map((g) => this.view(g));
  }

  /** Finds an owner's gateway by ID or name; another owner's is "not found". */
  async get(ownerId: OwnerId, ref: string): Promise<Gateway> {
    const g = await findByRef('gateway', ref, (id) => this.store.findById(id), (name) => this.store.findByName(ownerId, name));
    if (!g || g.ownerId !== ownerId) throw new GatewayError('gateway_not_found', `no gateway "${ref}"`, 'gateway');
    return g;
  }

  /**
   * The owner's gateways with when each last reported its table (null: never), without reading any
   * table: readers that keep an index per snapshot re-read only the tables that changed.
   */
  async tableVersions(ownerId: OwnerId): Promise<{ gateway: GatewayView; updatedAt: string | null }[]> {
    const list = await this.store.list(ownerId);
    const versions = await this.store.tableVersions(list.map((g) => g.id));
    return list.map((g) => ({ gateway: this.view(g), updatedAt: versions.get(g.id) ?? null }));
  }

  /** A gateway's latest table (the caller checked the gateway is the owner's). */
  async tableOf(id: GatewayId): Promise<TableSnapshot | undefined> {
    return this.store.getTable(id);
  }

  async show(ownerId: OwnerId, ref: string): Promise<GatewayView & { table: Omit<TableSnapshot, 'gatewayId'> | null }> {
    const g = await this.get(ownerId, ref);
    const t = await this.store.getTable(g.id);
    return { ...this.view(g), table: t ? { rows: t.rows, updatedAt: t.updatedAt } : null };
  }

  /** Revokes a gateway: its key and its certificates stop working at once here, and its channel is closed. */
  async delete(ownerId: OwnerId, ref: string): Promise<void> {
    const g = await this.get(ownerId, ref);
    if (!(await this.store.delete(ownerId, g.id, this.clock.now().toISOString()))) throw new GatewayError('gateway_not_found', `no gateway "${ref}"`, 'gateway');
    this.forgetGateway(g.id);
    await this.bus?.publish('tips.gateway.key', { gatewayId: g.id });
  }

  /**
   * Spends a one-time enrollment token, binds the gateway's Ed25519 public key and issues the
   * gateway a TLS client certificate for that same key (S6): its identity on the HTTPS listener.
   */
  async enrollWithCertificate(input: { enrollmentToken: string; name?: string; publicKey: string }): Promise<{ gateway: Gateway } & IssuedGatewayCertificate> {
    const gateway = await this.enroll(input);
    return { gateway, ...(await this.issueCertificate(gateway)) };
  }

  /** Spends a one-time enrollment token and binds the gateway's Ed25519 public key. */
  async enroll(input: { enrollmentToken: string; name?: string; publicKey: string }): Promise<Gateway> {
    const key = parseEd25519PublicKey(input.publicKey);
    const enrolledName = input.name === undefined ? null : parseName(input.name, 'name');
    const fail = () => new GatewayError('enrollment_failed', 'the enrollment token is unknown, spent or expired');
    if (typeof input.enrollmentToken !== 'string' || !ENROLLMENT_RE.test(input.enrollmentToken)) throw fail();
    const g = await this.store.enroll(hashToken(input.enrollmentToken), this.clock.now().toISOString(), key, enrolledName);
    if (!g) throw fail();
    return g;
  }

  /**
   * Issues (or renews) the gateway's TLS client certificate: the master's intermediate signs the
   * gateway's own Ed25519 key under `urn:tips:gateway:<id>`, clientAuth, short-lived; recorded by
   * serial and fingerprint so removing the gateway revokes it. Earlier certificates stay valid
   * until they expire (same key, same identity), so a connection opened before a renewal goes on.
   */
  async issueCertificate(gateway: Gateway): Promise<IssuedGatewayCertificate> {
    if (!this.tlsOptions) throw new Error('the gateway service has no CA (useTls was not called)');
    if (!gateway.publicKey) throw new GatewayAuthError('gateway not enrolled');
    const ca = await this.tlsOptions.ca();
    const now = this.clock.now();
    const spki = createPublicKey(gateway.publicKey).export({ format: 'der', type: 'spki' });
    const cert = await issueCertificate(ca.intermediate, {
      identity: { kind: 'gateway', id: gateway.id },
      publicKey: new x509.PublicKey(new Uint8Array(spki)),
      serial: serialFrom(this.random.bytes(16)),
      notBefore: new Date(now.getTime() - 60_000),
      notAfter: new Date(now.getTime() + (this.tlsOptions.certLifetimeHours ?? GATEWAY_CERT_LIFETIME_HOURS) * 3_600_000),
      usage: 'client',
    });
    const record: GatewayCertificate = {
      serial: cert.serialNumber.toLowerCase(),
      gatewayId: gateway.id,
      ownerId: gateway.ownerId,
      fingerprint: await certificateFingerprint(cert),
      notBefore: cert.notBefore.toISOString(),
      notAfter: cert.notAfter.toISOString(),
      status: 'active',
      createdAt: now.toISOString(),
      revokedAt: null,
    };
    await this.store.recordCertificate(record);
    const pems = caPem(ca);
    return { certificate: `${cert.toString('pem')}\n`, caChain: pems.intermediatePem + pems.rootPem, notAfter: record.notAfter };
  }

  /**
   * Verifies a TIPS-GW-1 signed request and returns its gateway, or refuses saying nothing useful.
   * Over TLS the peer must also present a certificate this master issued to that same gateway, not
   * revoked, not expired (S6); over plain HTTP the signature alone counts unless TLS is required.
   */
  async authenticate(input: AuthInput): Promise<Gateway> {
    if (!input.tls && this.requiresTls) throw new GatewayAuthError('plain HTTP refused: gateways must use mTLS (--gateway-require-tls)');
    const signed = readSignedHeaders(input.headers);
    if (!signed) throw new GatewayAuthError('missing or malformed signature headers');
    const now = this.clock.now().getTime();
    if (Math.abs(now - signed.timestamp) > SIGNATURE_WINDOW_MS) throw new GatewayAuthError('timestamp outside the window');
    if (!isId('gateway', signed.gatewayId)) throw new GatewayAuthError('malformed gateway id');
    const id = signed.gatewayId as GatewayId;
    const known = await this.keyOf(id, now);
    if (!known) throw new GatewayAuthError('unknown, revoked or unenrolled gateway');
    const canonical = canonicalString(input.method, input.pathWithQuery, signed.timestamp, signed.nonce, input.body);
    if (!verifyCanonical(known.key, canonical, signed.signature)) throw new GatewayAuthError('bad signature');
    // A replay repeats the signed timestamp and nonce; it is caught for as long as the window accepts it.
    if (!(await this.nonces.submit({ gatewayId: id, nonce: signed.nonce, timestamp: signed.timestamp }))) {
      throw new GatewayAuthError('replayed nonce');
    }
    if (input.tls) await this.checkCertificate(known.gateway, input.tls.peer, now);
    await this.sweepNonces(now);
    await this.seen(id, now);
    return known.gateway;
  }

  /**
   * Issue 13: over mTLS the channel already authenticates the gateway, so the registration path
   * need not pay an Ed25519 verify and a nonce write per request. The certificate is checked as in
   * `authenticate` (ours, names an enrolled gateway, active, in date) once per connection and again
   * when the check is older than CHANNEL_RECHECK_MS — a revocation or a revoked gateway bites
   * within that. TLS itself rules out replay on the connection.
   */
  async authenticateChannel(socket: object, peer: () => { authorized: boolean; der: Uint8Array } | undefined): Promise<Gateway> {
    const now = this.clock.now().getTime();
    const hit = this.channels.get(socket);
    if (hit && now - hit.checkedAt < CHANNEL_RECHECK_MS) return hit.gateway;
    const p = peer();
    if (!p) throw new GatewayAuthError('no client certificate over TLS');
    const { ids } = await this.parsed(p.der);
    if (ids.length !== 1 || ids[0]!.kind !== 'gateway' || !isId('gateway', ids[0]!.id)) throw new GatewayAuthError('client certificate does not name a gateway');
    const known = await this.keyOf(ids[0]!.id as GatewayId, now);
    if (!known) {
      this.channels.delete(socket);
      throw new GatewayAuthError('unknown, revoked or unenrolled gateway');
    }
    try {
      await this.checkCertificate(known.gateway, p, now);
    } catch (err) {
      this.channels.delete(socket);
      throw err;
    }
    this.channels.set(socket, { gateway: known.gateway, checkedAt: now });
    await this.seen(known.gateway.id, now);
    return known.gateway;
  }

  /** The client certificate of a TLS request must be ours, for this gateway, active and in date. */
  private async checkCertificate(gateway: Gateway, peer: { authorized: boolean; der: Uint8Array } | undefined, now: number): Promise<void> {
    if (!peer) throw new GatewayAuthError('no client certificate over TLS');
    if (!peer.authorized) throw new GatewayAuthError('client certificate not issued by this master');
    const { ids, serial, fingerprint } = await this.parsed(peer.der);
    if (ids.length !== 1 || ids[0]!.kind !== 'gateway') throw new GatewayAuthError('client certificate does not name a gateway');
    if (ids[0]!.id !== gateway.id) throw new GatewayAuthError('client certificate names another gateway');
    const record = await this.store.findCertificate(serial);
    if (!record || record.gatewayId !== gateway.id || record.fingerprint !== fingerprint) {
      throw new GatewayAuthError('client certificate unknown');
    }
    if (record.status !== 'active') throw new GatewayAuthError('client certificate revoked');
    if (now < Date.parse(record.notBefore) || now > Date.parse(record.notAfter)) throw new GatewayAuthError('client certificate expired');
  }

  /** The identities, serial and fingerprint of a client certificate, parsed once per distinct certificate. */
  private async parsed(der: Uint8Array): Promise<ParsedCertificate> {
    const k = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
    const hit = this.parsedCerts.get(k);
    if (hit) return hit;
    let cert: x509.X509Certificate;
    try {
      cert = parseCertificate(der);
    } catch {
      throw new GatewayAuthError('client certificate unreadable');
    }
    const out: ParsedCertificate = { ids: certificateIdentities(cert), serial: cert.serialNumber.toLowerCase(), fingerprint: await certificateFingerprint(cert) };
    if (this.parsedCerts.size >= MAX_PARSED_CERTS) this.parsedCerts.delete(this.parsedCerts.keys().next().value as string);
    this.parsedCerts.set(k, out);
    return out;
  }

  /** Keeps the latest interface table of a gateway (T11). */
  async saveTable(gateway: Gateway, rows: unknown): Promise<void> {
    if (!Array.isArray(rows)) throw new GatewayError('invalid_table', 'rows must be a list', 'rows');
    if (rows.length > MAX_TABLE_ROWS) throw new GatewayError('table_too_large', `a table has at most ${MAX_TABLE_ROWS} rows`, 'rows');
    rows.forEach((r, i) => {
      if (typeof r !== 'object' || r === null || Array.isArray(r)) throw new GatewayError('invalid_table', 'each row must be an object', `rows[${i}]`);
      const row = r as Record<string, unknown>;
      if (typeof row.mac !== 'string' || row.mac.length > 64) throw new GatewayError('invalid_table', 'each row needs a mac string', `rows[${i}].mac`);
      if (typeof row.state !== 'string' || row.state.length > 32) throw new GatewayError('invalid_table', 'each row needs a state string', `rows[${i}].state`);
    });
    await this.store.putTable({ gatewayId: gateway.id, rows: rows as Record<string, unknown>[], updatedAt: this.clock.now().toISOString() });
  }

  /** The names of the owner's gateways by ID (decision records carry the ID; operators read names). */
  async namesOfOwner(ownerId: OwnerId): Promise<Map<GatewayId, string>> {
    return new Map((await this.store.list(ownerId)).map((g) => [g.id, g.name]));
  }

  async idsOfOwner(ownerId: OwnerId): Promise<GatewayId[]> {
    return (await this.store.list(ownerId)).filter((g) => g.publicKey !== null).map((g) => g.id);
  }

  /** Queues a command durably and pushes it now when the gateway's channel is open here. */
  async send(gatewayId: GatewayId, command: ChannelCommand): Promise<QueuedCommand> {
    const now = this.clock.now();
    this.lastSeq = Math.max(this.lastSeq + 1, now.getTime() * 1000);
    const queued: QueuedCommand = {
      id: `cmd_${Buffer.from(this.random.bytes(12)).toString('base64url')}`,
      gatewayId,
      seq: this.lastSeq,
      command,
      createdAt: now.toISOString(),
    };
    await this.store.enqueue(queued, MAX_QUEUED_COMMANDS);
    const socket = this.sockets.get(gatewayId);
    // Not connected here: the replica holding the channel (if any) pushes it; else it waits in the queue.
    if (socket) socket.send(wire(queued));
    else await this.bus?.publish('tips.gateway.command', { gatewayId, commandId: queued.id });
    return queued;
  }

  isConnected(id: GatewayId): boolean {
    return this.sockets.has(id);
  }

  /** A gateway's channel opened: it replaces any older one, and every un-acked command is sent again, in order. */
  async channelOpened(gatewayId: GatewayId, socket: ChannelSocket): Promise<void> {
    const previous = this.sockets.get(gatewayId);
    this.sockets.set(gatewayId, socket);
    if (previous && previous !== socket) previous.close(4000, 'replaced by a newer channel');
    await this.seen(gatewayId, this.clock.now().getTime(), true);
    for (const c of await this.store.pending(gatewayId)) socket.send(wire(c));
  }

  /** One message from a gateway: `hello`, `ack` (with the command's id as `ref`) or `ping`. */
  async channelMessage(gatewayId: GatewayId, text: string): Promise<void> {
    let msg: { type?: unknown; ref?: unknown };
    try {
      msg = JSON.parse(text) as typeof msg;
    } catch {
      throw new InvalidValueError('message', 'channel messages are JSON objects');
    }
    if (typeof msg !== 'object' || msg === null) throw new InvalidValueError('message', 'channel messages are JSON objects');
    await this.seen(gatewayId, this.clock.now().getTime());
    if (msg.type === 'ack') {
      if (typeof msg.ref !== 'string') throw new InvalidValueError('ref', 'an ack names the command id it acknowledges in "ref"');
      await this.store.ack(gatewayId, msg.ref);
    } else if (msg.type !== 'hello' && msg.type !== 'ping') {
      throw new InvalidValueError('type', `unknown channel message type ${JSON.stringify(msg.type)?.slice(0, 40)}`);
    }
  }

  channelClosed(gatewayId: GatewayId, socket: ChannelSocket): void {
    if (this.sockets.get(gatewayId) === socket) this.sockets.delete(gatewayId);
  }

  /** Closes every channel (master shutdown). */
  closeAll(): void {
    for (const s of this.sockets.values()) s.close(1001, 'master shutting down');
    this.sockets.clear();
  }

  private async keyOf(id: GatewayId, now: number): Promise<{ gateway: Gateway; key: KeyObject } | undefined> {
    const cached = this.keys.get(id);
    if (cached && now - cached.loadedAt < (this.bus?.up() ? KEY_CACHE_BUS_UP_MS : KEY_CACHE_MS)) return cached;
    const g = await this.store.findById(id);
    if (!g?.publicKey) {
      this.keys.delete(id);
      return undefined;
    }
    const entry = { gateway: g, key: createPublicKey(g.publicKey), loadedAt: now };
    this.keys.set(id, entry);
    return entry;
  }

  private async seen(id: GatewayId, now: number, force = false): Promise<void> {
    const last = this.touched.get(id) ?? 0;
    if (!force && now - last < TOUCH_EVERY_MS) return;
    this.touched.set(id, now);
    await this.store.touch(id, new Date(now).toISOString());
  }

  private async sweepNonces(now: number): Promise<void> {
    if (++this.noncesSinceSweep < 10_000) return;
    this.noncesSinceSweep = 0;
    await this.store.forgetNoncesBefore(now - 2 * SIGNATURE_WINDOW_MS);
  }

  private view(g: Gateway): GatewayView {
    const { publicKey, ownerId: _o, ...rest } = g;
    return { ...rest, enrolled: publicKey !== null, connected: this.sockets.has(g.id) };
  }

  private nameTaken(name: string): GatewayError {
    return new GatewayError('gateway_name_taken', `you already have a gateway named "${name}"`, 'name');
  }
}

const wire = (c: QueuedCommand) => JSON.stringify({ id: c.id, ...c.command });

/** Accepts only an Ed25519 public key as SPKI PEM; returns it re-encoded canonically. */
export function parseEd25519PublicKey(pem: unknown): string {
  if (typeof pem !== 'string' || pem.length > 1024) throw new InvalidValueError('publicKey', 'expected an Ed25519 public key as SPKI PEM');
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pem, format: 'pem' });
  } catch {
    throw new InvalidValueError('publicKey', 'expected an Ed25519 public key as SPKI PEM');
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new InvalidValueError('publicKey', `expected an Ed25519 key, got ${key.asymmetricKeyType ?? 'an unknown type'}`);
  return key.export({ format: 'pem', type: 'spki' }).toString();
}
