import { isIP } from 'node:net';
import { type GatewayId, InvalidValueError, type Mac, type OwnerId, parseInterfaceType, parseMac, type TipsId } from '@tips/core';
import type { BusHub } from '../../bus/bus.ts';
import type { DomainEvents } from '../../events.ts';
import type { KeysetWindow } from '../../db/keyset.ts';
import type { Clock, Random } from '../../ports.ts';
import type { Gateway } from '../gateways/model.ts';
import type { GatewayService } from '../gateways/service.ts';
import type { MetalService } from '../metals/service.ts';
import type { SpaceService } from '../spaces/service.ts';
import { GroupCommit } from '../gateways/group-commit.ts';
import { DiscoveryError } from './errors.ts';
import {
  BLOCK_REASONS,
  DECISIONS,
  type Decision,
  DEFAULT_LIST_LIMIT,
  type DecisionResult,
  MAX_LIST_LIMIT,
  type RegistrationInput,
  type RegistrationQuery,
  type RegistrationRecord,
} from './model.ts';
import type { DiscoveryStore } from './store.ts';

export interface RawRegistration {
  mac: string;
  ip: string;
  gatewayInterface: string;
  interfaceType?: string;
  pxe?: boolean;
  hostname?: string;
  idempotencyKey?: string;
}

interface MetalFacts {
  metalId: TipsId;
  hasDefaultSpace: boolean;
  at: number;
}
/**
 * How long another replica's change to a metal or its Spaces may take to be seen here while the bus
 * is down; while it is up the change comes as a `tips.metal.eligibility` message and the TTL is only
 * a backstop (a message lost in a broker crash).
 */
const FACTS_TTL_MS = 30_000;
const FACTS_TTL_BUS_UP_MS = 300_000;
const MAX_FACTS = 200_000;
/** How long a block made through another master replica may take to be seen here while the bus is down (up: `tips.metal.block`). */
const BLOCKS_REFRESH_MS = 1_000;
const BLOCKS_REFRESH_BUS_UP_MS = 30_000;
/** Random bytes in a decision record's ID (72 bits). */
const RECORD_ID_RANDOM = 9;

export interface RawQuery {
  mac?: string;
  gatewayId?: string;
  reason?: string;
  decision?: string;
  since?: string;
  limit?: string;
}

const GATEWAY_INTERFACE = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,31}$/;
const HOSTNAME = /^[\x21-\x7e]{1,255}$/;
const IDEMPOTENCY_KEY = /^[A-Za-z0-9._:-]{8,64}$/;

export function parseRegistration(r: RawRegistration): RegistrationInput {
  const mac = parseMac(r.mac, 'mac');
  if (typeof r.ip !== 'string' || isIP(r.ip) === 0) throw new InvalidValueError('ip', `"${String(r.ip).slice(0, 64)}" is not an IPv4 or IPv6 address`);
  if (typeof r.gatewayInterface !== 'string' || !GATEWAY_INTERFACE.test(r.gatewayInterface)) {
    throw new InvalidValueError('gatewayInterface', 'expected the name of a gateway network interface (1–32 letters, digits, ".", "-", "_", ":", "@")');
  }
  const interfaceType = r.interfaceType === undefined ? 'other' : parseInterfaceType(r.interfaceType, 'interfaceType');
  if (r.hostname !== undefined && (typeof r.hostname !== 'string' || !HOSTNAME.test(r.hostname))) {
    throw new InvalidValueError('hostname', 'a hostname is 1–255 printable characters without spaces');
  }
  if (r.idempotencyKey !== undefined && (typeof r.idempotencyKey !== 'string' || !IDEMPOTENCY_KEY.test(r.idempotencyKey))) {
    throw new InvalidValueError('idempotencyKey', 'an idempotency key is 8–64 letters, digits, ".", "_", ":" or "-"');
  }
  return { mac, ip: r.ip, gatewayInterface: r.gatewayInterface, interfaceType, pxe: r.pxe ?? false, hostname: r.hostname ?? null, idempotencyKey: r.idempotencyKey ?? null };
}

/** Most registrations one batch request may carry. */
export const MAX_BATCH = 256;
const ITEM_FIELDS = new Set(['mac', 'ip', 'gatewayInterface', 'interfaceType', 'pxe', 'hostname', 'idempotencyKey']);
const ITEM_MAX_LENGTH: [string, number][] = [
  ['mac', 64],
  ['ip', 64],
  ['gatewayInterface', 64],
  ['interfaceType', 16],
  ['hostname', 255],
  ['idempotencyKey', 64],
];

/**
 * One item of a batch, as strictly as the single endpoint's schema and `parseRegistration` check
 * a lone registration; every error names the item, e.g. `items[3].mac`.
 */
export function parseBatchItem(raw: unknown, i: number): RegistrationInput {
  const at = (field: string) => `items[${i}]${field ? `.${field}` : ''}`;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new InvalidValueError(at(''), 'each item is an object {mac, ip, gatewayInterface, …}');
  const r = raw as Record<string, unknown>;
  for (const k of Object.keys(r)) if (!ITEM_FIELDS.has(k)) throw new InvalidValueError(at(k.slice(0, 40)), `unknown field "${k.slice(0, 40)}"`);
  for (const k of ['mac', 'ip', 'gatewayInterface'] as const) {
    if (typeof r[k] !== 'string') throw new InvalidValueError(at(k), `missing field "${k}" (a string)`);
  }
  if (r.interfaceType !== undefined && typeof r.interfaceType !== 'string') throw new InvalidValueError(at('interfaceType'), 'interfaceType is a string');
  // The single endpoint's schema bounds, so no error message ever echoes a huge value.
  for (const [k, max] of ITEM_MAX_LENGTH) {
    const v = r[k];
    if (typeof v === 'string' && v.length > max) throw new InvalidValueError(at(k), `${k} is at most ${max} characters`);
  }
  if (r.pxe !== undefined && typeof r.pxe !== 'boolean') throw new InvalidValueError(at('pxe'), 'pxe is a boolean');
  if (r.idempotencyKey !== undefined && typeof r.idempotencyKey !== 'string') throw new InvalidValueError(at('idempotencyKey'), 'idempotencyKey is a string');
  try {
    return parseRegistration(r as unknown as RawRegistration);
  } catch (err) {
    if (err instanceof InvalidValueError) throw new InvalidValueError(at(err.field), err.message);
    throw err;
  }
}

export function parseQuery(q: RawQuery): RegistrationQuery {
  const limit = q.limit === undefined ? DEFAULT_LIST_LIMIT : /^\d{1,4}$/.test(q.limit) ? Number(q.limit) : Number.NaN;
  if (!(limit >= 1 && limit <= MAX_LIST_LIMIT)) throw new InvalidValueError('limit', `limit is an integer from 1 to ${MAX_LIST_LIMIT}`);
  const out: RegistrationQuery = { limit };
  if (q.mac !== undefined) out.mac = parseMac(q.mac, 'mac');
  if (q.gatewayId !== undefined) out.gatewayId = q.gatewayId;
  if (q.reason !== undefined) {
    if (!(BLOCK_REASONS as readonly string[]).includes(q.reason)) throw new InvalidValueError('reason', `reason is one of ${BLOCK_REASONS.join(', ')}`);
    out.reason = q.reason;
  }
  if (q.decision !== undefined) {
    if (!(DECISIONS as readonly string[]).includes(q.decision)) throw new InvalidValueError('decision', `decision is one of ${DECISIONS.join(', ')}`);
    out.decision = q.decision as Decision;
  }
  if (q.since !== undefined) {
    const t = Date.parse(q.since);
    if (!/^\d{4}-\d{2}-\d{2}/.test(q.since) || Number.isNaN(t)) throw new InvalidValueError('since', 'since is an ISO-8601 date or time, e.g. 2026-11-22T10:00:00Z');
    out.since = new Date(t).toISOString();
  }
  return out;
}

/**
 * TIPS-D: decides every registration a gateway reports (T6), records it (T9), blocks and unblocks
 * metals at their owner's gateways (T16), and releases a gateway's lock when the cause of a refusal
 * is fixed (T10).
 *
 * The decision rule, checked in this order for (mac, gateway), among the metals of the gateway's
 * owner only (a MAC is unique per owner, not system-wide):
 *   1. none of the gateway owner's metals holds the MAC → blocked, `unknown_mac`
 *   2. the metal is blocked (until unblocked)          → blocked, `metal_blocked`    (with its TIPS ID)
 *   3. the metal has no default Phase 1 Space          → blocked, `no_default_space` (with its TIPS ID);
 *      a membership of a non-default Space is not enough
 *   otherwise                                           → active, with the TIPS ID.
 * Another owner's metal is never looked at, so no answer, reason or record tells a gateway's owner
 * that someone else declared a MAC (`foreign_gateway` appears only in records made before 0005).
 */
export class DiscoveryService {
  private readonly log: GroupCommit<RegistrationRecord, RegistrationRecord>;
  /** (owner, MAC) → its metal, for metals that had a default Space when last looked up (see `lookup`). */
  private readonly facts = new Map<string, MetalFacts>();
  private readonly factsOfMetal = new Map<TipsId, Set<string>>();
  /** Blocked metals as last read from the database; local blocks and unblocks apply at once. */
  private blocked = new Set<TipsId>();
  private blocksReadAt = Number.NEGATIVE_INFINITY;
  private blocksReading: Promise<void> | undefined;
  /** Bumped by every local block change, so a read that started before it cannot undo it. */
  private blocksGeneration = 0;
  private idPool = Buffer.alloc(0);
  private idPoolAt = 0;
  private bus: BusHub | undefined;

  constructor(
    private readonly store: DiscoveryStore,
    private readonly metals: MetalService,
    private readonly spaces: SpaceService,
    private readonly gateways: GatewayService,
    private readonly events: DomainEvents,
    private readonly clock: Clock,
    private readonly random: Random,
  ) {
    this.log = new GroupCommit((records) => this.store.record(records));
    events.on('metal.interfaces.changed', async (e) => {
      this.forget(e.metalId);
      await this.bus?.publish('tips.metal.eligibility', { metalId: e.metalId });
      if (e.added.length > 0) await this.release(e.ownerId, e.metalId, e.added);
    });
    events.on('space.deleted', async () => {
      this.forgetAll();
      await this.bus?.publish('tips.metal.eligibility', { metalId: null });
    });
    events.on('space.membership.changed', async (e) => {
      this.forget(e.metalId);
      await this.bus?.publish('tips.metal.eligibility', { metalId: e.metalId });
      if (!(await this.spaces.defaultSpaceOf(e.metalId))) return;
      const metal = await this.metals.get(e.ownerId, e.metalId);
      await this.release(e.ownerId, metal.id, metal.interfaces.map((i) => i.mac));
    });
    events.on('metal.deleted', async (e) => {
      this.forget(e.metalId);
      await this.store.removeBlock(e.metalId);
      this.blocksGeneration++;
      this.blocked.delete(e.metalId);
      await this.bus?.publish('tips.metal.eligibility', { metalId: e.metalId });
      await this.bus?.publish('tips.metal.block', { metalId: e.metalId, blocked: false });
    });
  }

  /**
   * Follows the other replicas (T2, B5): their eligibility changes drop what is cached here, their
   * blocks and unblocks make the blocked set be read again at the next decision, and when the bus comes back after an outage
   * everything cached is read afresh (messages may have been missed).
   */
  useBus(bus: BusHub): void {
    this.bus = bus;
    bus.on('tips.metal.eligibility', (m) => {
      if (m.metalId === null) this.forgetAll();
      else this.forget(m.metalId as TipsId);
    });
    // The message only says "re-read": the database, not the bus, says who is blocked.
    bus.on('tips.metal.block', () => {
      this.blocksGeneration++;
      this.blocksReadAt = Number.NEGATIVE_INFINITY;
    });
    bus.onResync(() => {
      this.forgetAll();
      this.blocksReadAt = Number.NEGATIVE_INFINITY;
    });
  }

  private forgetAll(): void {
    this.facts.clear();
    this.factsOfMetal.clear();
  }

  /**
   * Decides one registration (T6) and records it (T9) before answering. A retry under an
   * idempotency key already recorded for this gateway is answered from that record (issue 13).
   */
  async register(gateway: Gateway, raw: RawRegistration): Promise<DecisionResult> {
    const input = parseRegistration(raw);
    const result = await this.decide(gateway, input.mac);
    const record = this.recordOf(gateway, input, result, this.clock.now());
    const stood = await this.log.submit(record);
    return stood === record ? result : answerFrom(stood, input, 'idempotencyKey');
  }

  /**
   * Decides a batch of registrations from one gateway (a table re-registered after a restart, a
   * fleet powering on): every item is validated first — a bad one refuses the whole batch, naming
   * `items[i].field`, and nothing is recorded — then each is decided by the same rule as
   * `register`, in order, and one record per item is committed before the answers are returned.
   */
  async registerBatch(gateway: Gateway, raw: unknown): Promise<DecisionResult[]> {
    if (!Array.isArray(raw) || raw.length === 0 || raw.length > MAX_BATCH) {
      throw new InvalidValueError('items', `items is a list of 1 to ${MAX_BATCH} registrations`);
    }
    const inputs = raw.map((r, i) => parseBatchItem(r, i));
    const keys = new Set<string>();
    for (const [i, input] of inputs.entries()) {
      if (input.idempotencyKey === null) continue;
      if (keys.has(input.idempotencyKey)) throw new InvalidValueError(`items[${i}].idempotencyKey`, 'the same idempotency key is on an earlier item of this batch');
      keys.add(input.idempotencyKey);
    }
    const results: DecisionResult[] = [];
    for (const input of inputs) results.push(await this.decide(gateway, input.mac));
    const at = this.clock.now();
    const atIso = at.toISOString();
    const records = inputs.map((input, i) => this.recordOf(gateway, input, results[i]!, at, atIso));
    const stood = await this.log.submitAll(records);
    for (let i = 0; i < records.length; i++) {
      if (stood[i] !== records[i]) results[i] = answerFrom(stood[i]!, inputs[i]!, `items[${i}].idempotencyKey`);
    }
    return results;
  }

  // Fields spelled out: an object spread here cost ≈ 6 µs per record (V8's slow path), more than the decision itself.
  private recordOf(gateway: Gateway, input: RegistrationInput, result: DecisionResult, at: Date, atIso = at.toISOString()): RegistrationRecord {
    return {
      mac: input.mac,
      ip: input.ip,
      gatewayInterface: input.gatewayInterface,
      interfaceType: input.interfaceType,
      pxe: input.pxe,
      hostname: input.hostname,
      idempotencyKey: input.idempotencyKey,
      id: this.recordId(at.getTime()),
      at: atIso,
      ownerId: gateway.ownerId,
      gatewayId: gateway.id,
      decision: result.decision,
      reason: result.decision === 'blocked' ? result.reason : null,
      tipsId: result.tipsId ?? null,
    };
  }

  /**
   * A record ID: the time (so the keys append) and 72 random bits, taken from a pool filled by the
   * Random port 256 IDs at a time rather than one system call per decision.
   */
  private recordId(ms: number): string {
    if (this.idPoolAt + RECORD_ID_RANDOM > this.idPool.length) {
      this.idPool = Buffer.from(this.random.bytes(RECORD_ID_RANDOM * 256));
      this.idPoolAt = 0;
    }
    const random = this.idPool.toString('base64url', this.idPoolAt, this.idPoolAt + RECORD_ID_RANDOM);
    this.idPoolAt += RECORD_ID_RANDOM;
    return `reg_${ms.toString(36).padStart(10, '0')}${random}`;
  }

  private async decide(gateway: Gateway, mac: Mac): Promise<DecisionResult> {
    const metal = await this.lookup(gateway.ownerId, mac);
    if (!metal) return { decision: 'blocked', reason: 'unknown_mac' };
    if (await this.isBlocked(metal.metalId)) return { decision: 'blocked', reason: 'metal_blocked', tipsId: metal.metalId };
    if (!metal.hasDefaultSpace) return { decision: 'blocked', reason: 'no_default_space', tipsId: metal.metalId };
    return { decision: 'active', tipsId: metal.metalId };
  }

  /**
   * Which of the owner's metals holds the MAC and whether it has a default Phase 1 Space, asked of the metals and
   * spaces services. Only a complete answer (metal with a default Space) is cached, for at most
   * FACTS_TTL_MS and dropped at once on any local event about that metal or a Space; refusals are
   * never cached, so a fix made through any master replica is seen on the next registration.
   */
  private async lookup(ownerId: OwnerId, mac: Mac): Promise<MetalFacts | undefined> {
    const now = this.clock.now().getTime();
    const key = `${ownerId}/${mac}`;
    const cached = this.facts.get(key);
    if (cached && now - cached.at < (this.bus?.up() ? FACTS_TTL_BUS_UP_MS : FACTS_TTL_MS)) return cached;
    if (cached) this.forget(cached.metalId);
    const holder = await this.metals.findByMac(ownerId, mac);
    if (!holder) return undefined;
    const facts: MetalFacts = {
      metalId: holder.metal.id,
      hasDefaultSpace: (await this.spaces.defaultSpaceOf(holder.metal.id)) !== undefined,
      at: now,
    };
    if (facts.hasDefaultSpace) {
      if (this.facts.size >= MAX_FACTS) this.forget(this.facts.values().next().value!.metalId);
      this.facts.set(key, facts);
      const macs = this.factsOfMetal.get(facts.metalId) ?? new Set<string>();
      macs.add(key);
      this.factsOfMetal.set(facts.metalId, macs);
    }
    return facts;
  }

  private forget(metalId: TipsId): void {
    for (const key of this.factsOfMetal.get(metalId) ?? []) this.facts.delete(key);
    this.factsOfMetal.delete(metalId);
  }

  /** Blocks every interface of a metal at every gateway of its owner (T16), until unblocked. */
  async block(ownerId: OwnerId, ref: string, reason?: string): Promise<{ tipsId: TipsId; macs: Mac[]; gateways: number }> {
    if (reason !== undefined && (typeof reason !== 'string' || reason.length > 256)) throw new InvalidValueError('reason', 'a reason is at most 256 characters');
    const metal = await this.metals.get(ownerId, ref);
    await this.store.putBlock({ metalId: metal.id, ownerId, reason: reason ?? null, blockedAt: this.clock.now().toISOString() });
    this.blocksGeneration++;
    this.blocked.add(metal.id);
    await this.bus?.publish('tips.metal.block', { metalId: metal.id, blocked: true });
    const macs = metal.interfaces.map((i) => i.mac);
    const gws = await this.gateways.idsOfOwner(ownerId);
    for (const g of gws) await this.gateways.send(g, { type: 'block', tipsId: metal.id, macs, ...(reason ? { reason } : {}) });
    await this.events.emit('metal.access.revoked', { ownerId, metalId: metal.id, reason: 'blocked' });
    return { tipsId: metal.id, macs, gateways: gws.length };
  }

  /** Lifts a block: each of the owner's gateways gets `unblock` for each MAC of the metal. */
  async unblock(ownerId: OwnerId, ref: string): Promise<{ tipsId: TipsId; macs: Mac[]; gateways: number }> {
    const metal = await this.metals.get(ownerId, ref);
    if (!(await this.store.removeBlock(metal.id))) throw new DiscoveryError('metal_not_blocked', `metal "${metal.name}" is not blocked`, 'metal');
    this.blocksGeneration++;
    this.blocked.delete(metal.id);
    await this.bus?.publish('tips.metal.block', { metalId: metal.id, blocked: false });
    const macs = metal.interfaces.map((i) => i.mac);
    const gws = await this.gateways.idsOfOwner(ownerId);
    for (const g of gws) for (const mac of macs) await this.gateways.send(g, { type: 'unblock', mac });
    return { tipsId: metal.id, macs, gateways: gws.length };
  }

  /**
   * Whether a metal is blocked. A block or unblock made through this process holds from the moment
   * it is acknowledged (T16); one made through another master replica arrives on the bus (within
   * 1 s), or while the bus is down is seen within BLOCKS_REFRESH_MS, when the set is read again —
   * and its gateways enforce it from the command anyway.
   */
  async isBlocked(metalId: TipsId): Promise<boolean> {
    const now = this.clock.now().getTime();
    if (now - this.blocksReadAt >= (this.bus?.up() ? BLOCKS_REFRESH_BUS_UP_MS : BLOCKS_REFRESH_MS)) {
      const generation = this.blocksGeneration;
      this.blocksReading ??= this.store
        .blockedMetalIds()
        .then((ids) => {
          if (generation !== this.blocksGeneration) return;
          this.blocked = new Set(ids);
          this.blocksReadAt = now;
        })
        .finally(() => {
          this.blocksReading = undefined;
        });
      await this.blocksReading;
    }
    return this.blocked.has(metalId);
  }

  /** The names of the owner's gateways, to show records by gateway name (a removed gateway has none). */
  gatewayNames(ownerId: OwnerId): Promise<Map<GatewayId, string>> {
    return this.gateways.namesOfOwner(ownerId);
  }

  /** The owner's decision records (all, or failures only), newest first, in the window of one page. */
  list(ownerId: OwnerId, raw: RawQuery, failuresOnly: boolean, window?: KeysetWindow): Promise<RegistrationRecord[]> {
    const q = parseQuery(raw);
    if (window) {
      q.limit = window.limit;
      if (window.after) q.before = window.after;
    }
    if (failuresOnly) q.decision = 'blocked';
    return this.store.list(ownerId, q);
  }

  /** Every matching record, oldest first, in pages: the JSON-lines export for anomaly tools. */
  async *export(ownerId: OwnerId, raw: Omit<RawQuery, 'limit'>, failuresOnly: boolean): AsyncGenerator<RegistrationRecord> {
    const q = parseQuery({ ...raw, limit: '500' });
    if (failuresOnly) q.decision = 'blocked';
    // Keyset paging from before the first record: oldest first, each page after the last one seen.
    q.after = { at: '', id: '' };
    for (;;) {
      const page = await this.store.list(ownerId, q);
      yield* page;
      const last = page.at(-1);
      if (!last || page.length < q.limit) return;
      q.after = { at: last.at, id: last.id };
    }
  }

  /**
   * T10: the cause of a refusal was fixed (a MAC added to a metal, or the metal gained a default
   * Space): every gateway of the metal's owner that refused those MACs is told to clear its record, so the metal is
   * decided afresh when it next renews its lease. A blocked metal stays locked.
   */
  private async release(ownerId: OwnerId, metalId: TipsId, macs: Mac[]): Promise<void> {
    if (await this.isBlocked(metalId)) return;
    // Only the owner's gateways: another owner's gateway decides among its own owner's metals, and
    // a clear would tell it that someone has just declared that MAC.
    const own = new Set(await this.gateways.idsOfOwner(ownerId));
    for (const { gatewayId, mac } of await this.store.gatewaysThatBlocked(macs)) {
      if (own.has(gatewayId)) await this.gateways.send(gatewayId, { type: 'clear', mac });
    }
  }

}

/**
 * The answer a retry gets: the decision recorded when the gateway first sent this key — the same
 * registration (MAC, gateway interface), or the key was reused for another one (409, nothing recorded).
 */
function answerFrom(recorded: RegistrationRecord, input: RegistrationInput, field: string): DecisionResult {
  if (recorded.mac !== input.mac || recorded.gatewayInterface !== input.gatewayInterface) {
    throw new DiscoveryError('idempotency_key_reused', 'this idempotency key was sent with another registration (MAC or gateway interface)', field);
  }
  if (recorded.decision === 'active') return { decision: 'active', tipsId: recorded.tipsId! };
  return { decision: 'blocked', reason: recorded.reason!, ...(recorded.tipsId !== null ? { tipsId: recorded.tipsId } : {}) };
}
