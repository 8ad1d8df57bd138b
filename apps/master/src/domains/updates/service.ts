import type { KeysetWindow } from '../../db/keyset.ts';
import { createHash, createPublicKey } from 'node:crypto';
import type { GlazeId, OwnerId, SpaceId, TipsId } from '@tips/core';
import { coseSign1Verify, decodeCbor, importKey, SuitError } from '@tips/suit';
import { encodeTrustList, type TrustedUpdateServer } from '@tips/trust';
import type { Counter } from 'prom-client';
import type { ByteRange } from '../../blob/blob-store.ts';
import type { DomainEvents } from '../../events.ts';
import type { Clock, Random } from '../../ports.ts';
import type { DiscoveryService } from '../discovery/service.ts';
import type { EnrollmentService } from '../enrollment/service.ts';
import type { MetalPrincipal } from '../enrollment/model.ts';
import type { Glaze } from '../glazes/model.ts';
import type { GlazeService } from '../glazes/service.ts';
import type { KeyService } from '../keys/service.ts';
import type { MetalService } from '../metals/service.ts';
import type { NotificationService } from '../notifications/service.ts';
import type { SpaceService } from '../spaces/service.ts';
import { TokenError } from '../tokens/errors.ts';
import type { TokenService } from '../tokens/service.ts';
import { UpdateError } from './errors.ts';
import {
  type InstallReport,
  type Installation,
  MAX_REPORT_BYTES,
  MAX_TAMPER_CHANGES,
  type MetalEvent,
  type MetalEventKind,
  type MetalProfile,
  type PendingRollback,
  REPORT_RESULTS,
  type ReportResult,
  TAMPER_KINDS,
  type TamperChange,
  type WorkInterface,
  type WorkItem,
} from './model.ts';
import type { UpdateStore } from './store.ts';

export interface ProfileInput {
  vendorId: string | null;
  classId: string | null;
  glazes: { id: string; name: string; version: string; sequence: number }[];
  interfaces: { name: string; mac: string; addresses: string[] }[];
  protocols: string[];
}

/** What `tips metal show` adds about updates (S7, T14–T16). */
export interface MetalUpdateView {
  profile: Omit<MetalProfile, 'metalId' | 'ownerId'> | null;
  installed: { spaceId: string; glazeId: string; glazeName: string | null; version: string | null; sequence: number | null; installedAt: string | null }[];
  lastReport: ReportView | null;
  history: ReportView[];
  events: EventView[];
}
export type ReportView = Omit<InstallReport, 'ownerId' | 'metalId' | 'cose'> & {
  /** On a `rolled_back` report that left the installed Glaze: what the metal went back to (glazeId null: nothing TIPS installed). */
  rolledBackTo?: { glazeId: string | null; glazeName: string | null; version: string | null };
};
export type EventView = Omit<MetalEvent, 'ownerId' | 'metalId'>;

export interface UpdateMetrics {
  reports: Counter<'result'>;
  authFailures: Counter<'code'>;
}

const UUIDISH = /^[0-9a-fA-F-]{1,64}$/;
const HISTORY = 20;

const eventView = ({ ownerId: _o, metalId: _m, ...e }: MetalEvent): EventView => e;
const reportView = ({ ownerId: _o, metalId: _m, cose: _c, ...r }: InstallReport): ReportView => r;

/**
 * The Update Manager (the paper's Fig. 6, Phases 2 and 3): selects each Space's Glaze for the
 * metals in it — only their own Spaces, only the asked phase — keeps per-metal installation state
 * and history from signed reports, answers tamper reports by blocking the metal everywhere (T16),
 * and asks the notification fan-out to wake Phase 3 metals (T15).
 */
export class UpdateService {
  private metrics: UpdateMetrics | undefined;
  /** The fan-out of the last Phase 3 Glaze change (tests and benchmarks wait on it). */
  lastFanOut: Promise<number> = Promise.resolve(0);

  constructor(
    private readonly store: UpdateStore,
    private readonly metals: MetalService,
    private readonly spaces: SpaceService,
    private readonly glazes: GlazeService,
    private readonly keys: KeyService,
    private readonly tokens: TokenService,
    private readonly enrollment: EnrollmentService,
    private readonly discovery: DiscoveryService,
    private readonly notifications: NotificationService,
    events: DomainEvents,
    private readonly clock: Clock,
    private readonly random: Random,
    readonly reauthSeconds: number,
  ) {
    events.on('space.glaze.changed', async (e) => {
      if (e.phase !== 3 || e.glazeId === null) return;
      // A Space this owner holds; then `space set` is answered at once and the fan-out runs in the
      // background: every member's ID in one query, published without waiting on each (metals also pull).
      await this.spaces.get(e.ownerId, e.spaceId);
      this.lastFanOut = this.notifications.fanOut(() => this.spaces.memberIds(e.spaceId as SpaceId), {
        glazes: [e.glazeId],
        spaceId: e.spaceId,
        reason: 'glaze_set',
        notBefore: null,
      });
    });
    events.on('metal.deleted', (e) => this.store.forgetMetal(e.metalId));
  }

  useMetrics(m: UpdateMetrics): void {
    this.metrics = m;
  }

  // --- authentication of every metal-API request (S6, S11, T15) --------------------------------

  /**
   * The one-hop PoP token on top of mTLS: issued to this metal's certificate key (audience
   * urn:tips:master, scope pull:metal:<id>), proven by this very TLS connection, and no older than
   * the re-authentication period. Every refusal is recorded as a security event for the owner.
   */
  async authorize(metal: MetalPrincipal, authorization: string | undefined): Promise<void> {
    try {
      const m = authorization === undefined ? undefined : /^PoP\s+([A-Za-z0-9._~+/=-]{16,8192})$/.exec(authorization.trim());
      if (!m) throw new UpdateError('unauthenticated', 'send Authorization: PoP <token> (POST /api/metal/v1/tokens/issue)', 'authorization');
      let claims: { sub?: string; iat?: number };
      try {
        claims = (await this.tokens.verify(m[1]!, { audience: 'urn:tips:master', scope: `pull:metal:${metal.metalId}`, tlsSpki: metal.spki })).claims;
      } catch (e) {
        if (!(e instanceof TokenError)) throw e;
        const forbidden = e.code === 'token_audience_mismatch' || e.code === 'token_scope_insufficient';
        // An expired token of this metal asks for the same as a stale one: authenticate again.
        if (e.code === 'token_expired') throw new UpdateError('reauth_required', 'the token has expired: get a fresh one (POST /api/metal/v1/tokens/issue)', 'authorization');
        throw new UpdateError(forbidden ? 'forbidden' : 'unauthenticated', forbidden ? 'the token does not grant this metal the metal API' : `the token is not valid here (${e.code})`, 'authorization');
      }
      if (claims.sub !== `urn:tips:metal:${metal.metalId}`) throw new UpdateError('forbidden', 'the token was issued to another subject', 'authorization');
      const age = Math.floor(this.clock.now().getTime() / 1000) - (claims.iat ?? 0);
      if (age > this.reauthSeconds) {
        throw new UpdateError('reauth_required', `the last authentication is ${age} s old (the period is ${this.reauthSeconds} s): get a fresh token`, 'authorization');
      }
    } catch (e) {
      if (e instanceof UpdateError) await this.securityEvent(metal, e.code, e.message);
      throw e;
    }
  }

  async securityEvent(metal: Pick<MetalPrincipal, 'metalId' | 'ownerId'>, code: string, message: string): Promise<void> {
    this.metrics?.authFailures.inc({ code });
    await this.addEvent(metal.ownerId, metal.metalId as TipsId, 'auth_failure', code, { message });
  }

  // --- metal API -------------------------------------------------------------------------------

  async putProfile(metal: MetalPrincipal, input: ProfileInput): Promise<void> {
    const check = (ok: boolean, field: string, message: string) => {
      if (!ok) throw new UpdateError('invalid_profile', message, field);
    };
    for (const [f, v] of [
      ['vendorId', input.vendorId],
      ['classId', input.classId],
    ] as const) {
      check(v === null || UUIDISH.test(v), f, `${f} must be null or a UUID (hex and dashes)`);
    }
    for (const [i, g] of input.glazes.entries()) check(Number.isSafeInteger(g.sequence) && g.sequence >= 0, `glazes[${i}].sequence`, 'sequence must be a non-negative integer');
    await this.store.putProfile({
      metalId: metal.metalId as TipsId,
      ownerId: metal.ownerId,
      vendorId: input.vendorId === null ? null : input.vendorId.toLowerCase(),
      classId: input.classId === null ? null : input.classId.toLowerCase(),
      glazes: input.glazes,
      interfaces: input.interfaces,
      protocols: [...new Set(input.protocols)],
      updatedAt: this.clock.now().toISOString(),
    });
  }

  /** Exactly one item per Space of that phase the metal is in and whose Glaze is signed — never another Space's. */
  async work(
    metal: MetalPrincipal,
    phase: 2 | 3,
  ): Promise<{ items: WorkItem[]; notify: { url: string; topic: string } | null; reauthAfterSeconds: number; rollbacks: PendingRollback[] }> {
    const items: WorkItem[] = [];
    const ofPhase = new Set<string>();
    let links: ((names: string[]) => WorkInterface[]) | undefined;
    for (const m of await this.spaces.membershipsOfMetal(metal.metalId as TipsId)) {
      if (m.phase !== phase) continue;
      ofPhase.add(m.spaceId);
      const space = await this.spaces.get(metal.ownerId, m.spaceId);
      if (space.glazeId === null) continue;
      const glaze = await this.glazes.get(metal.ownerId, space.glazeId);
      const manifest = await this.keys.findManifest(metal.ownerId, glaze.id);
      // An unsigned Glaze cannot be verified by the metal, so it is not offered.
      if (!manifest) continue;
      links ??= await this.linkResolver(metal);
      items.push({
        spaceId: space.id,
        spaceName: space.name,
        phase,
        glaze: { id: glaze.id, name: glaze.name, version: glaze.version ?? manifest.sequenceNumber, size: glaze.size, sha256: glaze.sha256, handler: glaze.handler },
        manifest: Buffer.from(manifest.envelope).toString('base64'),
        blobPath: `/api/metal/v1/glazes/${glaze.id}/blob`,
        interfaces: links(m.interfaces),
      });
    }
    const rollbacks = (await this.pendingRollbacks(metal.metalId as TipsId)).filter((r) => ofPhase.has(r.spaceId));
    return { items, notify: this.notifications.subscription(metal.metalId), reauthAfterSeconds: this.reauthSeconds, rollbacks };
  }

  /**
   * Rollback requests the metal has not answered: a target is answered by a report for that Space
   * and Glaze made after the request that rolled back (result rolled_back) or says why it could
   * not (a reason starting with `rollback`); a Space whose installed Glaze changed since is dropped.
   * The MQTT notification is only a hint: this list is what the metal acts on.
   */
  async pendingRollbacks(metalId: TipsId): Promise<PendingRollback[]> {
    const events = await this.store.events(metalId, 'rollback_requested', 50);
    if (events.length === 0) return [];
    const reports = await this.store.reports(metalId, 500);
    const installed = new Map((await this.store.installations(metalId)).map((i) => [i.spaceId as string, i.installedGlazeId as string | null]));
    const out: PendingRollback[] = [];
    for (const e of [...events].reverse()) {
      const targets = Array.isArray(e.detail.spaces) ? (e.detail.spaces as { spaceId: string; glazeId: string }[]) : [];
      for (const t of targets) {
        if (installed.get(t.spaceId) !== t.glazeId) continue;
        const answered = reports.some((r) => r.spaceId === t.spaceId && r.glazeId === t.glazeId && r.createdAt >= e.createdAt && (r.result === 'rolled_back' || (r.reason ?? '').startsWith('rollback')));
        if (!answered) out.push({ eventId: e.id, spaceId: t.spaceId, glazeId: t.glazeId, requestedAt: e.createdAt });
      }
    }
    return out;
  }

  /**
   * Interface names of a membership → the metal's interfaces (MAC from the Metal Object, addresses
   * from the profile the metal registered, matched by MAC): what a multi-homed download may bind to.
   */
  private async linkResolver(metal: MetalPrincipal): Promise<(names: string[]) => WorkInterface[]> {
    const [twin, profile] = await Promise.all([this.metals.get(metal.ownerId, metal.metalId), this.store.profile(metal.metalId as TipsId)]);
    const addressesOf = new Map((profile?.interfaces ?? []).map((i) => [i.mac.toLowerCase(), i.addresses]));
    return (names) =>
      twin.interfaces.filter((i) => names.includes(i.name)).map((i) => ({ name: i.name, mac: i.mac, addresses: addressesOf.get(i.mac.toLowerCase()) ?? [] }));
  }

  /** A Glaze the metal may download: the Glaze of a Space it is in (else not found — no oracle for other IDs). */
  async blobGlaze(metal: MetalPrincipal, glazeId: string): Promise<Glaze> {
    for (const m of await this.spaces.membershipsOfMetal(metal.metalId as TipsId)) {
      const s = await this.spaces.get(metal.ownerId, m.spaceId);
      if (s.glazeId === glazeId) return this.glazes.get(metal.ownerId, glazeId);
    }
    throw new UpdateError('glaze_not_found', 'no such Glaze for this metal', 'id');
  }

  async openBlob(metal: MetalPrincipal, glaze: Glaze, range?: ByteRange) {
    return (await this.glazes.open(metal.ownerId, glaze.id, range)).stream;
  }

  /** The owner's active operator keys as @tips/trust encodes a trust list, with this master as update server. */
  async trustList(metal: MetalPrincipal, masterUri?: string): Promise<Uint8Array> {
    const keys = await this.keys.activeKeys(metal.ownerId);
    if (keys.length === 0) throw new UpdateError('glaze_not_found', 'the owner has registered no operator key yet', 'keys');
    const all = await this.keys.list(metal.ownerId);
    const changed = Math.max(...all.map((k) => Date.parse(k.revokedAt ?? k.createdAt)));
    const { rootPem, intermediatePem } = await this.enrollment.caPem();
    const fp = (pem: string) => createHash('sha256').update(Buffer.from(pem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64')).digest('hex');
    const server: TrustedUpdateServer = { name: 'tips-master', caFingerprints: [fp(rootPem), fp(intermediatePem)], certFingerprints: [], ...(masterUri ? { uri: masterUri } : {}) };
    return encodeTrustList({
      version: Math.floor(changed / 1000),
      operators: keys.map((k) => ({ name: k.name, publicKey: importKey(k.publicKeyPem).publicKey! })),
      updateServers: [server],
    });
  }

  /** A signed report (COSE_Sign1 by the key of the metal's current certificate) moves the installation state. */
  async report(metal: MetalPrincipal, cose: Uint8Array): Promise<Installation> {
    if (cose.length === 0 || cose.length > MAX_REPORT_BYTES) throw new UpdateError('report_malformed', `a COSE_Sign1 of 1 to ${MAX_REPORT_BYTES} bytes is expected`, 'body');
    let payload: Uint8Array;
    try {
      const key = createPublicKey({ key: Buffer.from(metal.spki), format: 'der', type: 'spki' });
      payload = coseSign1Verify(cose, [{ publicKey: key }]).payload;
    } catch (e) {
      if (!(e instanceof SuitError)) throw e;
      const invalid = e.code === 'suit_signature_invalid' || e.code === 'suit_untrusted_key';
      const err = new UpdateError(invalid ? 'report_invalid' : 'report_malformed', invalid ? 'the report is not signed by this metal\'s certificate key' : `not a COSE_Sign1: ${e.message}`, 'body');
      if (invalid) await this.securityEvent(metal, err.code, err.message);
      throw err;
    }
    const r = parseReport(payload);
    const member = (await this.spaces.membershipsOfMetal(metal.metalId as TipsId)).some((m) => m.spaceId === r.spaceId);
    if (!member) throw new UpdateError('space_not_found', 'the report names a Space this metal is not in', 'spaceId');
    await this.glazes.get(metal.ownerId, r.glazeId).catch(() => {
      throw new UpdateError('glaze_not_found', 'the report names an unknown Glaze', 'glazeId');
    });
    const now = this.clock.now().toISOString();
    const reportId = `rpt_${Buffer.from(this.random.bytes(16)).toString('hex')}`;
    const state = await this.store.recordReport({
      id: reportId,
      ownerId: metal.ownerId,
      metalId: metal.metalId as TipsId,
      spaceId: r.spaceId as SpaceId,
      glazeId: r.glazeId as GlazeId,
      result: r.result,
      reason: r.reason,
      sequence: r.sequence,
      at: r.at,
      cose,
      createdAt: now,
    });
    this.metrics?.reports.inc({ result: r.result });
    // The metal left the Glaze it ran for the one before (a rollback): the owner sees from what to what.
    if (state.rolledBackFrom) {
      await this.addEvent(metal.ownerId, metal.metalId as TipsId, 'rolled_back', 'glaze_rolled_back', { reportId, spaceId: r.spaceId, from: state.rolledBackFrom, to: state.installedGlazeId });
    }
    return state;
  }

  /** T16: records what changed, then blocks every interface of the metal at every gateway of its owner. */
  async tamper(metal: MetalPrincipal, changes: TamperChange[]): Promise<{ eventId: string; gateways: number }> {
    if (changes.length === 0 || changes.length > MAX_TAMPER_CHANGES) throw new UpdateError('invalid_tamper_report', `give 1 to ${MAX_TAMPER_CHANGES} changes`, 'changes');
    for (const [i, c] of changes.entries()) {
      if (!TAMPER_KINDS.includes(c.kind)) throw new UpdateError('invalid_tamper_report', `kind must be one of ${TAMPER_KINDS.join(', ')}`, `changes[${i}].kind`);
    }
    const eventId = await this.addEvent(metal.ownerId, metal.metalId as TipsId, 'tamper', 'software_outside_tips', { changes });
    const blocked = await this.discovery.block(metal.ownerId, metal.metalId, `tamper: ${changes.length} change(s) outside TIPS, e.g. ${changes[0]!.kind} ${changes[0]!.path}`.slice(0, 256));
    return { eventId, gateways: blocked.gateways };
  }

  // --- owner API -------------------------------------------------------------------------------

  async view(ownerId: OwnerId, metalId: TipsId): Promise<MetalUpdateView> {
    const profile = await this.store.profile(metalId);
    const installs = await this.store.installations(metalId);
    const glaze = (id: string) => this.glazes.get(ownerId, id as GlazeId).catch(() => undefined);
    const rollbacks = new Map<unknown, unknown>((await this.store.events(metalId, 'rolled_back', HISTORY)).map((e) => [e.detail.reportId, e.detail.to]));
    const history: ReportView[] = [];
    for (const r of await this.store.reports(metalId, HISTORY)) {
      const v = reportView(r);
      const to = rollbacks.get(r.id);
      if (r.result === 'rolled_back' && (typeof to === 'string' || to === null)) {
        const g = to === null ? undefined : await glaze(to);
        v.rolledBackTo = { glazeId: to, glazeName: g?.name ?? null, version: g?.version ?? null };
      }
      history.push(v);
    }
    const installed: MetalUpdateView['installed'] = [];
    for (const i of installs) {
      if (!i.installedGlazeId) continue;
      const g = await glaze(i.installedGlazeId);
      installed.push({ spaceId: i.spaceId, glazeId: i.installedGlazeId, glazeName: g?.name ?? null, version: g?.version ?? null, sequence: i.installedSequence, installedAt: i.installedAt });
    }
    const { metalId: _m, ownerId: _o, ...p } = profile ?? ({} as MetalProfile);
    return { profile: profile ? p : null, installed, lastReport: history[0] ?? null, history, events: (await this.store.events(metalId, undefined, HISTORY)).map(eventView) };
  }

  async events(ownerId: OwnerId, metalRef: string, kind?: MetalEventKind): Promise<EventView[]> {
    const metal = await this.metals.get(ownerId, metalRef);
    return (await this.store.events(metal.id, kind, 1000)).map(eventView);
  }

  /**
   * The owner's tamper reports across the fleet (T16), newest first, each with its metal's name and
   * whether the metal is blocked now (the report blocked it; an owner may have unblocked it since).
   */
  async tamperEvents(ownerId: OwnerId, window: KeysetWindow): Promise<(EventView & { metalId: TipsId; metalName: string; blocked: boolean })[]> {
    const rows = await this.store.ownerEvents(ownerId, 'tamper', window);
    const ids = [...new Set(rows.map((r) => r.metalId))];
    const names = new Map((await this.metals.getMany(ownerId, ids)).map((m) => [m.id as string, m.name]));
    const blocked = new Map(await Promise.all(ids.map(async (id) => [id as string, await this.discovery.isBlocked(id)] as const)));
    return rows.map((r) => ({ ...eventView(r), metalId: r.metalId, metalName: names.get(r.metalId) ?? r.metalId, blocked: blocked.get(r.metalId) ?? false }));
  }

  /** Metals matching a profile query: vendor/class IDs and an installed Glaze (ID, name or name@version). */
  async metalsMatching(ownerId: OwnerId, q: { vendor?: string; class?: string; glaze?: string }): Promise<TipsId[]> {
    const glazeId = q.glaze === undefined ? undefined : (await this.glazes.get(ownerId, q.glaze)).id;
    return this.store.metalsMatching(ownerId, { vendorId: q.vendor?.toLowerCase(), classId: q.class?.toLowerCase(), glazeId });
  }

  /** `tips metal rollback`: records the request and notifies the metal, one message per Space. */
  async requestRollback(ownerId: OwnerId, metalRef: string, glazeRef?: string): Promise<{ eventId: string; spaces: { spaceId: string; glazeId: string }[]; notified: number }> {
    const metal = await this.metals.get(ownerId, metalRef);
    const glazeId = glazeRef === undefined ? undefined : (await this.glazes.get(ownerId, glazeRef)).id;
    const targets = (await this.store.installations(metal.id))
      .filter((i) => i.installedGlazeId !== null && (glazeId === undefined || i.installedGlazeId === glazeId))
      .map((i) => ({ spaceId: i.spaceId as string, glazeId: i.installedGlazeId as string }));
    if (targets.length === 0) {
      throw new UpdateError('nothing_to_roll_back', glazeRef ? `metal "${metal.name}" has not reported Glaze "${glazeRef}" installed` : `metal "${metal.name}" has reported no installed Glaze`, glazeRef ? 'glaze' : 'metal');
    }
    const eventId = await this.addEvent(ownerId, metal.id, 'rollback_requested', 'rollback_requested', { spaces: targets });
    let notified = 0;
    for (const t of targets) notified += await this.notifications.notify([metal.id], { glazes: [t.glazeId], spaceId: t.spaceId, reason: 'rollback', notBefore: null });
    return { eventId, spaces: targets, notified };
  }

  private async addEvent(ownerId: OwnerId, metalId: TipsId, kind: MetalEventKind, code: string, detail: Record<string, unknown>): Promise<string> {
    const id = `evt_${Buffer.from(this.random.bytes(16)).toString('hex')}`;
    await this.store.addEvent({ id, ownerId, metalId, kind, code, detail, createdAt: this.clock.now().toISOString() });
    return id;
  }
}

/** Contract C report payload: a CBOR map with text keys. */
function parseReport(payload: Uint8Array): { glazeId: string; spaceId: string; result: ReportResult; reason: string | null; sequence: number; at: string } {
  const bad = (field: string, message: string): never => {
    throw new UpdateError('report_malformed', message, field);
  };
  let m: unknown;
  try {
    m = decodeCbor(payload);
  } catch (e) {
    return bad('body', `the report payload is not strict CBOR: ${(e as Error).message}`);
  }
  if (!(m instanceof Map)) return bad('body', 'the report payload must be a CBOR map');
  const map = m as Map<unknown, unknown>;
  const str = (k: string, max = 128) => {
    const v = map.get(k);
    if (typeof v !== 'string' || v.length === 0 || v.length > max) bad(k, `${k}: expected a text string`);
    return v as string;
  };
  const result = str('result') as ReportResult;
  if (!REPORT_RESULTS.includes(result)) bad('result', `result must be one of ${REPORT_RESULTS.join(', ')}`);
  const reason = map.get('reason');
  if (reason !== null && reason !== undefined && (typeof reason !== 'string' || reason.length > 256)) bad('reason', 'reason: expected null or a text string');
  const seq = map.get('sequence');
  const sequence = typeof seq === 'bigint' ? Number(seq) : seq;
  if (typeof sequence !== 'number' || !Number.isSafeInteger(sequence) || sequence < 0) bad('sequence', 'sequence: expected a non-negative integer');
  const at = str('at', 64);
  if (Number.isNaN(Date.parse(at))) bad('at', 'at: expected an ISO time');
  return { glazeId: str('glazeId'), spaceId: str('spaceId'), result, reason: (reason as string | null | undefined) ?? null, sequence: sequence as number, at };
}
