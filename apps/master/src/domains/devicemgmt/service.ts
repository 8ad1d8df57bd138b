import type { Lwm2mOut as Lwm2mView } from '@tips/core';
import { encodeBase32, type OwnerId, type TipsId } from '@tips/core';
import type { KeysetWindow } from '../../db/keyset.ts';
import type { DomainEvents } from '../../events.ts';
import type { Clock, Random } from '../../ports.ts';
import type { GlazeService } from '../glazes/service.ts';
import type { KeyService } from '../keys/service.ts';
import type { MetalService } from '../metals/service.ts';
import type { SpaceService } from '../spaces/service.ts';
import { DeviceMgmtError } from './errors.ts';
import { type FirmwareResult, type FirmwareState, FW_RESULT_NAMES, FW_STATE, FW_STATE_NAMES, isFirmwareResult, isFirmwareState, nextJobStatus } from './firmware.ts';
import { declaredObjects } from './link-format.ts';
import { DEFAULT_LIFETIME, type FirmwareJob, MAX_ENDPOINT, MAX_LIFETIME, type ObservedValue, type QueuedOperation, type Registration } from './model.ts';
import { OBJ_FIRMWARE } from './objects.ts';
import type { DeviceMgmtStore } from './store.ts';
import { formatPath, Lwm2mFormatError, type Lwm2mPath, parsePath, type ResourceRecord, type ResourceValue, valueToJson } from './values.ts';

/** Who sent a CoAP request: the metal of the DTLS session (constrained.principal(peer)). */
export interface DevicePrincipal {
  metalId: string;
  ownerId: OwnerId;
}

/**
 * Server → client operations on a registered device (the Device Management and Information
 * Reporting interfaces), implemented over the master's CoapServer by coap.ts. Errors are
 * DeviceMgmtError: lwm2m_offline when no session reaches the device, lwm2m_device_error with the
 * device's CoAP code otherwise.
 */
export interface DeviceChannel {
  read(metalId: TipsId, path: Lwm2mPath): Promise<ResourceRecord[]>;
  write(metalId: TipsId, path: Lwm2mPath, records: ResourceRecord[]): Promise<void>;
  /** Writes one opaque or string resource as its raw bytes (content format 42 / 0). */
  writeRaw(metalId: TipsId, path: Lwm2mPath, value: Uint8Array | string): Promise<void>;
  execute(metalId: TipsId, path: Lwm2mPath): Promise<void>;
  /** Observes `path`; every notification (and the first answer) arrives at `onRecords`. */
  observe(metalId: TipsId, path: Lwm2mPath, onRecords: (records: ResourceRecord[]) => void): Promise<void>;
  /** The CoAP base URI devices fetch payloads from (coaps://host:port). */
  baseUri(): string;
}

export interface DeviceMgmtMetrics {
  registration(op: 'register' | 'update' | 'deregister' | 'bootstrap'): void;
  refused(reason: string): void;
  expired(n: number): void;
  firmwareResult(result: string): void;
  /** Queue mode: an operation queued, then done or failed when the device woke. */
  queued?(kind: string, status: string): void;
}

export type { Lwm2mOut as Lwm2mView } from '@tips/core';

/**
 * What changed for an owner's console (the live event stream): a device registered, updated,
 * de-registered or went offline, one of its queued operations moved (sent, done, failed), or its
 * firmware job did (a State/Result report, a failed delivery or Update).
 */
export type Lwm2mChange = 'register' | 'update' | 'deregister' | 'offline' | 'queue' | 'firmware';

/**
 * A Register or Update as the registration interface answers it. `sendQueued`: the device is
 * reachable now and may have operations queued while it slept — the caller runs flushQueue after
 * its answer. True when it is in queue mode, and also when it just left it (an Update with b=U, a
 * re-Register in U): Core 1.1 §6.5 holds requests only until the client is online again, and the
 * Update is how it says so; a U client stays online from then on, so nothing may wait for a next UQ
 * update that may never come.
 */
export type Contact = Registration & { sendQueued: boolean };

/** Operations waiting for a queue-mode device per metal (more: 409 lwm2m_queue_full). */
export const MAX_QUEUED = 8;
/** Finished queued operations kept per metal for their status resource. */
const KEEP_FINISHED = 16;

export type { QueuedOperation } from './model.ts';

/** A sent operation whose replica neither finished nor failed it within this long died mid-way: failed. */
const SENT_STALE_MS = 10 * 60_000;

/** The LwM2M part of a bootstrapping profile (bootstrap's Lwm2mSettings, contract K). */
export interface Lwm2mBootstrapSettings {
  serverUri?: string;
  lifetime: number;
  binding: 'U' | 'UQ';
  defaultMinPeriod?: number;
  defaultMaxPeriod?: number;
}

/** The Security/Server values the bootstrap server writes. */
export interface BootstrapValues {
  serverUri: string;
  shortServerId: number;
  lifetime: number;
  defaultMinPeriod: number;
  defaultMaxPeriod: number;
  binding: 'U' | 'UQ';
}

/** The master's bootstrap values (what a profile leaves out), but for the server URI: this CoAP endpoint. */
export const BOOTSTRAP_DEFAULTS: Omit<BootstrapValues, 'serverUri'> = { shortServerId: 1, lifetime: 300, defaultMinPeriod: 1, defaultMaxPeriod: 60, binding: 'U' };

const BINDINGS = new Set(['U', 'UQ']);
const VERSIONS = new Set(['1.0', '1.1']);

/**
 * LwM2M 1.1 device management (Z5, S13): registrations of metals that speak LwM2M, their lifetime,
 * the last values they reported, and Firmware Update jobs that deliver a Glaze with its signed SUIT
 * manifest through object 5.
 */
export class DeviceMgmtService {
  private channel: DeviceChannel | undefined;
  private metrics: DeviceMgmtMetrics | undefined;
  private log: (obj: object, msg: string) => void = () => {};
  private changed: (ownerId: OwnerId, what: Lwm2mChange) => void = () => {};
  /** Queue mode: the flush running per metal on this replica (a second update joins it). */
  private readonly flushing = new Map<TipsId, Promise<void>>();
  /** Jobs whose Update (/5/0/2) was sent: never executed twice. */
  private readonly executed = new Set<string>();
  /** Jobs whose manifest the device accepted: only their reports move them. */
  private readonly armed = new Set<string>();

  constructor(
    private readonly store: DeviceMgmtStore,
    private readonly metals: MetalService,
    private readonly spaces: SpaceService,
    private readonly glazes: GlazeService,
    private readonly keys: KeyService,
    events: DomainEvents,
    private readonly clock: Clock,
    private readonly random: Random,
    /** Seconds past the lifetime before a silent device counts as offline. */
    readonly graceSeconds = 15,
  ) {
    events.on('metal.deleted', async (e) => {
      const r = await this.store.registrationOf(e.metalId);
      if (r) await this.store.deleteRegistration(r.id);
      await this.store.forgetQueue(e.metalId);
    });
  }

  /** How a metal's bootstrapping profile is found (bootstrap.profileOfMetal's LwM2M part). */
  useBootstrapProfiles(lookup: (ownerId: OwnerId, metalId: string) => Promise<Lwm2mBootstrapSettings | undefined>): void {
    this.profileLookup = lookup;
  }
  private profileLookup: ((ownerId: OwnerId, metalId: string) => Promise<Lwm2mBootstrapSettings | undefined>) | undefined;

  /**
   * What the bootstrap server writes into a metal's Security/Server objects (contract K): the LwM2M
   * part of the bootstrapping profile its onboarding record names; the master's defaults (this CoAP
   * endpoint, lifetime 300 s, binding U, periods 1/60 s) for what the profile leaves out, or for a
   * metal that was not onboarded or whose profile has no LwM2M part.
   */
  async bootstrapProfile(p: DevicePrincipal, baseUri: string): Promise<BootstrapValues & { source: 'profile' | 'default' }> {
    const d: BootstrapValues = { serverUri: baseUri, ...BOOTSTRAP_DEFAULTS };
    const l = await this.profileLookup?.(p.ownerId, p.metalId);
    if (!l) return { ...d, source: 'default' };
    return {
      serverUri: l.serverUri ?? d.serverUri,
      shortServerId: 1,
      lifetime: l.lifetime,
      defaultMinPeriod: l.defaultMinPeriod ?? Math.min(d.defaultMinPeriod, l.defaultMaxPeriod ?? d.defaultMinPeriod),
      defaultMaxPeriod: l.defaultMaxPeriod ?? Math.max(d.defaultMaxPeriod, l.defaultMinPeriod ?? 0),
      binding: l.binding,
      source: 'profile',
    };
  }

  useChannel(channel: DeviceChannel): void {
    this.channel = channel;
  }
  useMetrics(m: DeviceMgmtMetrics): void {
    this.metrics = m;
  }
  useLog(log: (obj: object, msg: string) => void): void {
    this.log = log;
  }
  /** Registrations and queued operations change over CoAP, not through the owner API: told here (the console's live stream). */
  useChanges(changed: (ownerId: OwnerId, what: Lwm2mChange) => void): void {
    this.changed = changed;
  }

  private newId(): string {
    return encodeBase32(this.random.bytes(10));
  }

  private refuse(reason: string, err: DeviceMgmtError): never {
    this.metrics?.refused(reason);
    throw err;
  }

  private parseLifetime(lt: string | undefined, fallback: number): number {
    if (lt === undefined) return fallback;
    if (!/^[1-9][0-9]{0,9}$/.test(lt) || Number(lt) > MAX_LIFETIME) this.refuse('malformed', new DeviceMgmtError('lwm2m_malformed', `lt: expected seconds 1..${MAX_LIFETIME}, got ${JSON.stringify(lt)}`, 'lt'));
    return Number(lt);
  }

  private parseBinding(b: string | undefined, q: boolean, fallback: { queueMode: boolean }): { binding: 'U'; queueMode: boolean } {
    if (b === undefined) return { binding: 'U', queueMode: q || fallback.queueMode };
    if (!BINDINGS.has(b)) this.refuse('malformed', new DeviceMgmtError('lwm2m_malformed', `b: this server serves UDP only ("U", or "UQ" for queue mode), got ${JSON.stringify(b)}`, 'b'));
    return { binding: 'U', queueMode: b === 'UQ' || q };
  }

  private parseObjects(body: Uint8Array): Registration['objects'] {
    try {
      return declaredObjects(new TextDecoder('utf-8', { fatal: true }).decode(body)).objects;
    } catch (e) {
      const message = e instanceof Lwm2mFormatError ? e.message : 'the link-format body is not UTF-8';
      return this.refuse('malformed', new DeviceMgmtError('lwm2m_malformed', message, 'payload'));
    }
  }

  private expiry(lastUpdate: Date, lifetime: number): number {
    return lastUpdate.getTime() + (lifetime + this.graceSeconds) * 1000;
  }

  /** Register (Core §6.2.1): `ep` must name the metal of the DTLS session (its TIPS ID or name). */
  async register(p: DevicePrincipal, query: Record<string, string>, body: Uint8Array): Promise<Contact> {
    const ep = query.ep;
    if (!ep || ep.length > MAX_ENDPOINT) return this.refuse('malformed', new DeviceMgmtError('lwm2m_malformed', 'ep: the endpoint name is required (the metal\'s TIPS ID or name)', 'ep'));
    const metal = await this.metals.get(p.ownerId, ep).catch(() => undefined);
    if (!metal || metal.id !== p.metalId) {
      this.log({ event: 'lwm2m_endpoint_refused', metal: p.metalId, endpoint: ep }, 'LwM2M register refused: ep is not the metal of the session');
      return this.refuse('endpoint', new DeviceMgmtError('lwm2m_endpoint_mismatch', 'ep does not name the metal of this session', 'ep'));
    }
    const version = query.lwm2m ?? '1.0';
    if (!VERSIONS.has(version)) return this.refuse('malformed', new DeviceMgmtError('lwm2m_malformed', `lwm2m: versions 1.0 and 1.1 are served, got ${JSON.stringify(version)}`, 'lwm2m'));
    const lifetime = this.parseLifetime(query.lt, DEFAULT_LIFETIME);
    const { binding, queueMode } = this.parseBinding(query.b, 'Q' in query, { queueMode: false });
    const objects = this.parseObjects(body);
    const now = this.clock.now();
    const r: Registration = {
      id: this.newId(),
      metalId: metal.id,
      ownerId: p.ownerId,
      endpoint: ep,
      lwm2mVersion: version,
      lifetime,
      binding,
      queueMode,
      objects,
      registeredAt: now.toISOString(),
      lastUpdate: now.toISOString(),
      expiresAt: this.expiry(now, lifetime),
      online: true,
    };
    // A re-register replaces the registration, not the metal's queue: if it slept before, its queue waits.
    const { replacedQueueMode } = await this.store.putRegistration(r);
    this.metrics?.registration('register');
    this.log({ event: 'lwm2m_registered', metal: r.metalId, registration: r.id, lifetime, queueMode, objects: objects.map((o) => o.objectId) }, 'LwM2M device registered');
    this.changed(r.ownerId, 'register');
    return { ...r, sendQueued: queueMode || replacedQueueMode };
  }

  /** The metal `ep` names if it is the metal of the session (Bootstrap-Request), else undefined. */
  async metalByEndpoint(p: DevicePrincipal, ep: string): Promise<TipsId | undefined> {
    if (ep.length > MAX_ENDPOINT) return undefined;
    const metal = await this.metals.get(p.ownerId, ep).catch(() => undefined);
    if (!metal || metal.id !== p.metalId) {
      this.metrics?.refused('endpoint');
      return undefined;
    }
    return metal.id;
  }

  bootstrapped(): void {
    this.metrics?.registration('bootstrap');
  }

  /** The registration `id` if it is this metal's; another metal's is "not found" (no oracle). */
  async own(p: DevicePrincipal, id: string): Promise<Registration> {
    const r = await this.store.registrationById(id);
    if (!r || r.metalId !== p.metalId) return this.refuse('unknown_registration', new DeviceMgmtError('lwm2m_registration_not_found', 'no such registration for this metal', 'id'));
    return r;
  }

  /** Update (Core §6.2.2): any of lt, b, a new object list; refreshes the lifetime. */
  async update(p: DevicePrincipal, id: string, query: Record<string, string>, body: Uint8Array): Promise<Contact> {
    const r = await this.own(p, id);
    const lifetime = this.parseLifetime(query.lt, r.lifetime);
    const { binding, queueMode } = this.parseBinding(query.b, 'Q' in query, r);
    const objects = body.length > 0 ? this.parseObjects(body) : r.objects;
    const now = this.clock.now();
    const patch = { lifetime, binding, queueMode, objects, lastUpdate: now.toISOString(), expiresAt: this.expiry(now, lifetime) };
    if (!(await this.store.touch(id, patch))) return this.refuse('unknown_registration', new DeviceMgmtError('lwm2m_registration_not_found', 'no such registration for this metal', 'id'));
    this.metrics?.registration('update');
    this.changed(r.ownerId, 'update');
    return { ...r, ...patch, online: true, sendQueued: queueMode || r.queueMode };
  }

  async deregister(p: DevicePrincipal, id: string): Promise<void> {
    const r = await this.own(p, id);
    await this.store.deleteRegistration(r.id);
    this.metrics?.registration('deregister');
    this.log({ event: 'lwm2m_deregistered', metal: r.metalId, registration: r.id }, 'LwM2M device de-registered');
    this.changed(r.ownerId, 'deregister');
  }

  /** Marks offline the devices silent past lifetime + grace (the sweeper calls it). */
  async sweep(): Promise<number> {
    const expired = await this.store.expire(this.clock.now().getTime());
    if (expired.length > 0) {
      this.metrics?.expired(expired.length);
      this.log({ event: 'lwm2m_expired', count: expired.length }, 'LwM2M registrations past their lifetime marked offline');
      for (const ownerId of new Set(expired.map((e) => e.ownerId))) this.changed(ownerId, 'offline');
    }
    return expired.length;
  }

  counts(): Promise<{ registered: number; online: number }> {
    return this.store.counts();
  }

  registrationOf(metalId: TipsId): Promise<Registration | undefined> {
    return this.store.registrationOf(metalId);
  }

  /** The `lwm2m` block of `tips metal show`, null when the metal never registered over LwM2M. */
  async view(metalId: TipsId): Promise<Lwm2mView | null> {
    const r = await this.store.registrationOf(metalId);
    if (!r) return null;
    const online = r.online && r.expiresAt >= this.clock.now().getTime();
    const job = await this.store.latestJob(metalId);
    return {
      registrationId: r.id,
      endpoint: r.endpoint,
      lwm2mVersion: r.lwm2mVersion,
      lifetime: r.lifetime,
      binding: r.queueMode ? 'UQ' : 'U',
      queueMode: r.queueMode,
      objects: r.objects,
      registeredAt: r.registeredAt,
      lastUpdate: r.lastUpdate,
      online,
      firmware: job
        ? {
        jobId: job.id,
        glazeId: job.glazeId,
        status: job.status,
        state: job.state === null ? null : FW_STATE_NAMES[job.state],
        result: job.result === null ? null : FW_RESULT_NAMES[job.result],
            packageUri: job.packageUri,
            updatedAt: job.updatedAt,
          }
        : null,
    };
  }

  /** The owner's LwM2M devices, a window at a time (TIPS ID order), each with its metal's name. */
  async list(ownerId: OwnerId, window?: KeysetWindow): Promise<{ metalId: TipsId; metalName: string; view: Lwm2mView }[]> {
    const regs = await this.store.listRegistrations(ownerId, window);
    const names = new Map((await this.metals.getMany(ownerId, regs.map((r) => r.metalId))).map((m) => [m.id as string, m.name]));
    const out: { metalId: TipsId; metalName: string; view: Lwm2mView }[] = [];
    for (const r of regs) {
      const view = await this.view(r.metalId);
      if (view) out.push({ metalId: r.metalId, metalName: names.get(r.metalId) ?? r.metalId, view });
    }
    return out;
  }

  async viewByRef(ownerId: OwnerId, metalRef: string): Promise<Lwm2mView | null> {
    const metal = await this.metals.get(ownerId, metalRef);
    return this.view(metal.id);
  }

  /**
   * Values a device reported (read answers and notifications) are kept, last one per path. One
   * metal's reports are applied in the order they arrived (the queue is joined before any await), so
   * a slower write never lands after a newer one.
   */
  recordValues(metalId: TipsId, records: ResourceRecord[]): Promise<void> {
    const at = this.clock.now().toISOString();
    return this.serially(metalId, async () => {
      await this.store.putObserved(metalId, records.map((r) => ({ path: formatPath(r.path), value: valueToJson(r.value), observedAt: at })));
      const state = records.find((r) => r.path.join('/') === '5/0/3')?.value;
      const result = records.find((r) => r.path.join('/') === '5/0/5')?.value;
      if (state !== undefined || result !== undefined) await this.firmwareReport(metalId, state, result);
    });
  }

  /** Notifications of State and Result arrive close together: one job write at a time per metal. */
  private serially(metalId: TipsId, fn: () => Promise<void>): Promise<void> {
    const next = (this.reports.get(metalId) ?? Promise.resolve()).then(fn);
    const settled = next.catch(() => {});
    this.reports.set(metalId, settled);
    void settled.then(() => {
      if (this.reports.get(metalId) === settled) this.reports.delete(metalId);
    });
    return next;
  }
  private readonly reports = new Map<TipsId, Promise<void>>();

  /** The last observed value of /obj/inst/res (owner API). */
  async observedValue(ownerId: OwnerId, metalRef: string, path: string): Promise<ObservedValue> {
    const metal = await this.metals.get(ownerId, metalRef);
    const v = await this.store.observed(metal.id, path);
    if (!v) throw new DeviceMgmtError('lwm2m_resource_not_found', `no value of ${path} was reported by this device`, 'path');
    return v;
  }

  private async registeredOnline(ownerId: OwnerId, metalRef: string): Promise<{ metalId: TipsId; channel: DeviceChannel }> {
    const metal = await this.metals.get(ownerId, metalRef);
    const r = await this.store.registrationOf(metal.id);
    if (!r) throw new DeviceMgmtError('lwm2m_not_registered', 'this metal has no LwM2M registration', 'metal');
    if (!r.online || r.expiresAt < this.clock.now().getTime()) throw new DeviceMgmtError('lwm2m_offline', 'the device is offline (its lifetime expired)', 'metal');
    if (!this.channel) throw new DeviceMgmtError('lwm2m_no_coap', 'the master has no CoAP endpoint (--coap-port)', 'metal');
    return { metalId: metal.id, channel: this.channel };
  }

  // --- queue mode ---------------------------------------------------------------------------------

  private async queueModeOf(metalId: TipsId): Promise<boolean> {
    return (await this.store.registrationOf(metalId))?.queueMode === true;
  }

  /** Queues an operation; undefined when the device left queue mode meanwhile (the caller sends it now). */
  private async enqueue(ownerId: OwnerId, metalId: TipsId, kind: QueuedOperation['kind'], target: string): Promise<QueuedOperation | undefined> {
    const now = this.clock.now().toISOString();
    const op = await this.store.enqueue({ id: `lwq_${this.newId()}`, metalId, ownerId, kind, target, status: 'queued', createdAt: now, updatedAt: now }, MAX_QUEUED);
    if (op === 'awake') return undefined;
    if (op === 'full') throw new DeviceMgmtError('lwm2m_queue_full', `the device is in queue mode and already has ${MAX_QUEUED} operations waiting for its next update`, 'metal');
    this.metrics?.queued?.(kind, 'queued');
    this.log({ event: 'lwm2m_queued', metal: metalId, op: op.id, kind, target }, 'LwM2M operation queued until the device wakes');
    return op;
  }

  /** The queued and recently finished operations of a metal (oldest first), whichever replica queued or sent them. */
  async queued(ownerId: OwnerId, metalRef: string): Promise<QueuedOperation[]> {
    const metal = await this.metals.get(ownerId, metalRef);
    return this.store.listQueued(metal.id);
  }

  /** One queued operation of a metal (`tips lwm2m queue <metal> <op>`). */
  async queuedOne(ownerId: OwnerId, metalRef: string, id: string): Promise<QueuedOperation> {
    const metal = await this.metals.get(ownerId, metalRef);
    const op = await this.store.queuedOperation(metal.id, id);
    if (!op) throw new DeviceMgmtError('lwm2m_operation_not_found', `metal "${metal.name}" has no queued operation "${id.slice(0, 80)}" (finished ones are kept ${KEEP_FINISHED} deep)`, 'op');
    return op;
  }

  /**
   * The device is awake (it just registered or sent an update to this replica): its queued operations
   * go out, in the order they were asked for, each claimed in the database first so that no other
   * replica sends it too, and answered into its row. Never throws.
   */
  flushQueue(metalId: TipsId): Promise<void> {
    const running = this.flushing.get(metalId);
    if (running) return running.then(() => this.flushQueue(metalId));
    const p = this.flushNow(metalId)
      .catch((e) => this.log({ event: 'lwm2m_queue_failed', metal: metalId, err: String(e) }, 'LwM2M queue flush failed'))
      .finally(() => this.flushing.delete(metalId));
    this.flushing.set(metalId, p);
    return p;
  }

  private async flushNow(metalId: TipsId): Promise<void> {
    const r = await this.store.registrationOf(metalId);
    if (!r) return;
    const now = this.clock.now();
    const stale = await this.store.failStaleSent(metalId, new Date(now.getTime() - SENT_STALE_MS).toISOString(), { code: 'lwm2m_delivery_interrupted', message: 'the replica that sent it stopped before the device answered' }, now.toISOString());
    if (stale > 0) this.log({ event: 'lwm2m_queue_interrupted', metal: metalId, count: stale }, 'LwM2M queued operations left sent by a stopped replica marked failed');
    if (stale > 0) this.changed(r.ownerId, 'queue');
    for (;;) {
      const op = await this.store.claimQueued(metalId, this.clock.now().toISOString());
      if (!op) return;
      this.changed(r.ownerId, 'queue');
      try {
        if (op.kind === 'read') {
          op.records = (await this.readNow(r.ownerId, metalId, parsePath(op.target))).map((x) => ({ path: formatPath(x.path), value: valueToJson(x.value) }));
        } else {
          op.jobId = (await this.firmwareNow(r.ownerId, metalId, op.target)).id;
        }
        op.status = 'done';
      } catch (e) {
        op.status = 'failed';
        op.error = e instanceof DeviceMgmtError ? { code: e.code, message: e.message } : { code: 'lwm2m_device_error', message: (e as Error).message };
      }
      op.updatedAt = this.clock.now().toISOString();
      await this.store.finishQueued(op, KEEP_FINISHED);
      this.changed(r.ownerId, 'queue');
      this.metrics?.queued?.(op.kind, op.status);
      this.log({ event: 'lwm2m_queue_sent', metal: metalId, op: op.id, kind: op.kind, status: op.status }, 'LwM2M queued operation sent');
    }
  }

  /** Read (Core §6.3.1) live from the device; the answer is recorded like a notification. A queue-mode device's read is queued. */
  async read(ownerId: OwnerId, metalRef: string, pathText: string): Promise<ResourceRecord[] | { queued: QueuedOperation }> {
    let path: number[];
    try {
      path = parsePath(pathText);
    } catch (e) {
      throw new DeviceMgmtError('lwm2m_malformed', (e as Error).message, 'path');
    }
    if (path.length < 1 || path.length > 3) throw new DeviceMgmtError('lwm2m_malformed', 'path: /obj, /obj/inst or /obj/inst/res', 'path');
    if (path[0] === 0) throw new DeviceMgmtError('lwm2m_malformed', 'the Security object (0) is not readable by a management server', 'path');
    const { metalId } = await this.registeredOnline(ownerId, metalRef);
    if (await this.queueModeOf(metalId)) {
      const queued = await this.enqueue(ownerId, metalId, 'read', formatPath(path));
      if (queued) return { queued };
    }
    return this.readNow(ownerId, metalId, path);
  }

  private async readNow(_ownerId: OwnerId, metalId: TipsId, path: Lwm2mPath): Promise<ResourceRecord[]> {
    if (!this.channel) throw new DeviceMgmtError('lwm2m_no_coap', 'the master has no CoAP endpoint (--coap-port)', 'metal');
    const records = await this.channel.read(metalId, path);
    await this.recordValues(metalId, records);
    return records;
  }

  /**
   * Firmware Update through object 5 (Z5, S4, S5): the Glaze must be the Glaze of a Space the metal
   * is in (what a Linux metal could fetch) and signed. The signed SUIT envelope is written to
   * Package (/5/0/0) first; the device verifies it against its trust list as a Linux metal does.
   * Then Package URI (/5/0/1) names the payload over CoAP; the device downloads it block-wise and
   * checks the digest the manifest binds. State and Update Result are observed; at Downloaded the
   * server executes Update (/5/0/2); the job ends at result 1 (success) or a failure result.
   */
  async startFirmwareUpdate(ownerId: OwnerId, metalRef: string, glazeRef: string): Promise<FirmwareJob | { queued: QueuedOperation }> {
    const { metalId } = await this.registeredOnline(ownerId, metalRef);
    if (await this.queueModeOf(metalId)) {
      // Checked now (a bad request is refused at once), delivered when the device wakes.
      const glaze = await this.firmwareGlaze(ownerId, metalId, glazeRef);
      const queued = await this.enqueue(ownerId, metalId, 'firmware', glaze.id);
      if (queued) return { queued };
    }
    return this.firmwareNow(ownerId, metalId, glazeRef);
  }

  private async firmwareGlaze(ownerId: OwnerId, metalId: TipsId, glazeRef: string) {
    const glaze = await this.glazes.get(ownerId, glazeRef);
    let allowed = false;
    for (const m of await this.spaces.membershipsOfMetal(metalId)) {
      if ((await this.spaces.get(ownerId, m.spaceId)).glazeId === glaze.id) allowed = true;
    }
    if (!allowed) throw new DeviceMgmtError('lwm2m_glaze_not_for_metal', 'the Glaze is not the Glaze of a Space this metal is in (set it on one first)', 'glaze');
    const manifest = await this.keys.findManifest(ownerId, glaze.id);
    if (!manifest) throw new DeviceMgmtError('lwm2m_glaze_unsigned', 'the Glaze has no signed manifest: a device could not verify it', 'glaze');
    const last = await this.store.latestJob(metalId);
    if (last && last.status !== 'succeeded' && last.status !== 'failed') throw new DeviceMgmtError('lwm2m_firmware_busy', `firmware job ${last.id} is still ${last.status}`, 'metal');
    return glaze;
  }

  private async firmwareNow(ownerId: OwnerId, metalId: TipsId, glazeRef: string): Promise<FirmwareJob> {
    if (!this.channel) throw new DeviceMgmtError('lwm2m_no_coap', 'the master has no CoAP endpoint (--coap-port)', 'metal');
    const channel = this.channel;
    const glaze = await this.firmwareGlaze(ownerId, metalId, glazeRef);
    const manifest = await this.keys.findManifest(ownerId, glaze.id);
    if (!manifest) throw new DeviceMgmtError('lwm2m_glaze_unsigned', 'the Glaze has no signed manifest: a device could not verify it', 'glaze');
    const last = await this.store.latestJob(metalId);
    // Jobs are ordered by creation time: a new one is always later than the last, even within a millisecond.
    const now = new Date(Math.max(this.clock.now().getTime(), last ? Date.parse(last.createdAt) + 1 : 0)).toISOString();
    const job: FirmwareJob = {
      id: `fwj_${this.newId()}`,
      ownerId,
      metalId,
      glazeId: glaze.id,
      packageUri: `${channel.baseUri()}/glazes/${glaze.id}/blob`,
      status: 'delivering',
      state: null,
      result: null,
      message: null,
      createdAt: now,
      updatedAt: now,
    };
    await this.store.putJob(job);
    try {
      await channel.observe(metalId, [OBJ_FIRMWARE, 0, 3], (rs) => void this.recordValues(metalId, rs).catch((e) => this.log({ event: 'lwm2m_record_failed', err: String(e) }, 'recording a notification failed')));
      await channel.observe(metalId, [OBJ_FIRMWARE, 0, 5], (rs) => void this.recordValues(metalId, rs).catch((e) => this.log({ event: 'lwm2m_record_failed', err: String(e) }, 'recording a notification failed')));
      await channel.writeRaw(metalId, [OBJ_FIRMWARE, 0, 0], manifest.envelope);
      // From here on State/Result are this job's: before, they are what the last update left (result 1 stays until a new package).
      this.armed.add(job.id);
      await channel.writeRaw(metalId, [OBJ_FIRMWARE, 0, 1], job.packageUri);
    } catch (e) {
      this.armed.delete(job.id);
      const message = e instanceof Error ? e.message : String(e);
      await this.serially(metalId, () => this.store.updateJob(job.id, { status: 'failed', state: job.state, result: job.result, message, updatedAt: this.clock.now().toISOString() }));
      this.changed(ownerId, 'firmware');
      this.metrics?.firmwareResult('delivery_failed');
      throw e;
    }
    this.log({ event: 'lwm2m_firmware_started', metal: metalId, job: job.id, glaze: glaze.id }, 'LwM2M firmware update started');
    return (await this.store.latestJob(metalId)) ?? job;
  }

  /** Folds a reported State/Result into the open job; at Downloaded, executes Update once. */
  private async firmwareReport(metalId: TipsId, stateValue: ResourceValue | undefined, resultValue: ResourceValue | undefined): Promise<void> {
    const job = await this.store.latestJob(metalId);
    if (!job || job.status === 'succeeded' || job.status === 'failed') return;
    const state: FirmwareState | null = isFirmwareState(stateValue) ? stateValue : job.state;
    const result: FirmwareResult | null = isFirmwareResult(resultValue) ? resultValue : job.result;
    if (state === null || !this.armed.has(job.id)) return;
    const status = nextJobStatus(job.status, job.state, state, result ?? 0);
    const message = status === 'failed' ? `device reported state ${FW_STATE_NAMES[state]}, result ${FW_RESULT_NAMES[result ?? 0]}` : job.message;
    await this.store.updateJob(job.id, { status, state, result, message, updatedAt: this.clock.now().toISOString() });
    if (status !== job.status || state !== job.state || result !== job.result) this.changed(job.ownerId, 'firmware');
    if (status === 'succeeded' || status === 'failed') {
      this.metrics?.firmwareResult(status === 'succeeded' ? 'success' : FW_RESULT_NAMES[result ?? 0]);
      this.log({ event: 'lwm2m_firmware_finished', metal: metalId, job: job.id, status, result: FW_RESULT_NAMES[result ?? 0] }, 'LwM2M firmware update finished');
      this.executed.delete(job.id);
      this.armed.delete(job.id);
      return;
    }
    if (state === FW_STATE.DOWNLOADED && !this.executed.has(job.id) && this.channel) {
      this.executed.add(job.id);
      // Not awaited: the device's own notifications (Updating, then the result) queue behind this report.
      this.channel.execute(metalId, [OBJ_FIRMWARE, 0, 2]).catch((e) =>
        this.serially(metalId, async () => {
          await this.store.updateJob(job.id, { status: 'failed', state, result, message: `Update (/5/0/2) failed: ${(e as Error).message}`, updatedAt: this.clock.now().toISOString() });
          this.changed(job.ownerId, 'firmware');
        }).catch((err) => this.log({ event: 'lwm2m_record_failed', err: String(err) }, 'recording a failed Update failed')),
      );
    }
  }
}
