import { findByRef, InvalidValueError, isId, looksLikeId, type Mac, newId, type OwnerId, parseInterfaceType, parseMac, parseName, type TipsId } from '@tips/core';
import { isUniqueViolation, type Tx } from '../../db/database.ts';
import type { JoinedPage, KeysetWindow } from '../../db/keyset.ts';
import type { DomainEvents } from '../../events.ts';
import type { Clock, Random } from '../../ports.ts';
import { parseEngine } from '../provisioning/model.ts';
import { MetalError } from './errors.ts';
import { MAX_INTERFACES, MAX_LABELS, type Metal, type MetalInterface, type StoredMetal } from './model.ts';
import type { ListViewMetrics, MetalQuery, MetalStore } from './store.ts';

/** MACs per lookup: well under SQLite's 32 766 and PostgreSQL's 65 535 parameters. */
const MAC_CHUNK = 5000;

export interface InterfaceInput {
  name: string;
  mac: string;
  type: string;
  pxe?: boolean;
}
export interface CreateMetalInput {
  name: string;
  labels?: Record<string, string>;
  interfaces: InterfaceInput[];
  engine?: string | null;
}
export interface UpdateMetalInput {
  name?: string;
  /** The metal's Phase 1 engine; null = inherit its default Space's. */
  engine?: string | null;
  labels?: Record<string, string>;
  interfaces?: InterfaceInput[];
  /** With `interfaces`: drop the Space memberships the new list breaks instead of refusing it. */
  dropMemberships?: boolean;
}

/** A metal's membership as the metals domain needs to see it: the spaces domain provides it. */
export interface MembershipView {
  spaceName: string;
  phase: number;
  interfaces: string[];
  isDefault: boolean;
}

const IFACE_NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,31}$/;
const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/;

function parseInterfaces(input: InterfaceInput[]): MetalInterface[] {
  if (input.length === 0) throw new InvalidValueError('interfaces', 'a metal needs at least one interface');
  if (input.length > MAX_INTERFACES) throw new InvalidValueError('interfaces', `a metal has at most ${MAX_INTERFACES} interfaces`);
  const names = new Set<string>();
  const macs = new Set<string>();
  return input.map((i, n) => {
    if (!IFACE_NAME.test(i.name)) {
      throw new InvalidValueError(`interfaces[${n}].name`, `interface name "${i.name}" must be 1–32 letters, digits, ".", "-", "_" or ":"`);
    }
    const mac = parseMac(i.mac, `interfaces[${n}].mac`);
    if (names.has(i.name)) throw new MetalError('duplicate_interface', `interface ${i.name} is listed twice`, `interfaces[${n}].name`);
    if (macs.has(mac)) throw new MetalError('duplicate_interface', `MAC ${mac} is listed twice`, `interfaces[${n}].mac`);
    names.add(i.name);
    macs.add(mac);
    return { name: i.name, mac, type: parseInterfaceType(i.type, `interfaces[${n}].type`), pxe: i.pxe ?? false };
  });
}

function parseLabels(labels: Record<string, string>): Record<string, string> {
  const entries = Object.entries(labels);
  if (entries.length > MAX_LABELS) throw new InvalidValueError('labels', `at most ${MAX_LABELS} labels`);
  for (const [k, v] of entries) {
    if (!LABEL_KEY.test(k)) throw new InvalidValueError(`labels.${k}`, `label key "${k}" must be 1–63 letters, digits, ".", "-", "_" or "/"`);
    if (typeof v !== 'string' || v.length > 128) throw new InvalidValueError(`labels.${k}`, 'label values are strings of at most 128 characters');
  }
  return Object.fromEntries(entries.sort(([a], [b]) => a.localeCompare(b)));
}

/** Metal Objects (T3): the owner's declared devices and their interfaces. */
export class MetalService {
  private memberships?: (metalId: TipsId, tx?: Tx) => Promise<MembershipView[]>;

  constructor(
    private readonly store: MetalStore,
    private readonly events: DomainEvents,
    private readonly clock: Clock,
    private readonly random: Random,
  ) {}

  /** Late binding: the spaces domain depends on metals, and tells it which Spaces a metal is in. */
  useMemberships(lookup: (metalId: TipsId, tx?: Tx) => Promise<MembershipView[]>): void {
    this.memberships = lookup;
  }

  /**
   * With `within`: it runs in the transaction that writes the new metal, after its rows, and
   * throwing there undoes the metal (the spaces domain adds a new metal's memberships this way).
   */
  async create(ownerId: OwnerId, input: CreateMetalInput, within?: (metal: Metal, tx: Tx) => Promise<void>): Promise<Metal> {
    const name = parseName(input.name);
    const interfaces = parseInterfaces(input.interfaces);
    const labels = parseLabels(input.labels ?? {});
    const engine = input.engine === undefined || input.engine === null ? null : parseEngine(input.engine);
    await this.assertMacsFree(ownerId, undefined, interfaces);
    if (await this.store.findByName(ownerId, name)) throw new MetalError('metal_name_taken', `you already have a metal named "${name}"`, 'name');
    const now = this.clock.now().toISOString();
    const metal: Metal = { id: newId('metal', this.random.bytes(16)), ownerId, name, labels, interfaces, engine, createdAt: now, updatedAt: now };
    await this.write(ownerId, metal, () => this.store.insert(metal, within ? (tx) => within(metal, tx) : undefined));
    await this.events.emit('metal.interfaces.changed', {
      ownerId,
      metalId: metal.id,
      added: interfaces.map((i) => i.mac),
      removed: [],
      removedNames: [],
    });
    return metal;
  }

  async update(ownerId: OwnerId, ref: string, input: UpdateMetalInput): Promise<Metal> {
    const current = await this.get(ownerId, ref);
    const next: Metal = { ...current, updatedAt: this.clock.now().toISOString() };
    if (input.name !== undefined) {
      next.name = parseName(input.name);
      const other = await this.store.findByName(ownerId, next.name);
      if (other && other.id !== current.id) throw new MetalError('metal_name_taken', `you already have a metal named "${next.name}"`, 'name');
    }
    if (input.labels !== undefined) next.labels = parseLabels(input.labels);
    if (input.engine !== undefined) next.engine = input.engine === null ? null : parseEngine(input.engine);
    if (input.dropMemberships !== undefined && (input.interfaces === undefined || typeof input.dropMemberships !== 'boolean')) {
      throw new InvalidValueError('dropMemberships', 'dropMemberships is a boolean given together with interfaces');
    }
    if (input.interfaces !== undefined) {
      next.interfaces = parseInterfaces(input.interfaces);
      await this.assertMacsFree(ownerId, current.id, next.interfaces);
    }
    // The membership check runs in the write's transaction, the metal's row locked: a membership
    // added meanwhile (spaces' addMember locks the same row) is seen, or waits for this change.
    const keepMemberships = input.interfaces !== undefined && input.dropMemberships !== true;
    await this.write(ownerId, next, () => this.store.update(next, keepMemberships ? (tx) => this.assertMembershipsKept(current, next.interfaces, tx) : undefined));
    if (input.interfaces !== undefined) {
      const before = new Set(current.interfaces.map((i) => i.mac));
      const after = new Set(next.interfaces.map((i) => i.mac));
      const afterNames = new Set(next.interfaces.map((i) => i.name));
      await this.events.emit('metal.interfaces.changed', {
        ownerId,
        metalId: current.id,
        added: [...after].filter((m) => !before.has(m)),
        removed: [...before].filter((m) => !after.has(m)),
        removedNames: current.interfaces.filter((i) => !afterNames.has(i.name)).map((i) => i.name),
      });
    }
    return next;
  }

  async delete(ownerId: OwnerId, ref: string): Promise<void> {
    const metal = await this.get(ownerId, ref);
    if (!(await this.store.delete(ownerId, metal.id))) throw this.notFound(ref);
    await this.events.emit('metal.deleted', { ownerId, metalId: metal.id, macs: metal.interfaces.map((i) => i.mac) });
  }

  /**
   * The metal as it is inside `tx`, its row locked until `tx` ends: the spaces domain checks a new
   * membership's interfaces against it in the same transaction as the membership's write.
   */
  async getLocked(ownerId: OwnerId, id: TipsId, tx: Tx): Promise<Metal> {
    const metal = await this.store.findByIdLocked(ownerId, id, tx);
    if (!metal) throw this.notFound(id);
    return metal;
  }

  /** Finds a metal by TIPS ID or by name, only among the owner's own (another owner's is "not found"). */
  async get(ownerId: OwnerId, ref: string): Promise<Metal> {
    const metal = await findByRef('metal', ref, (id) => this.store.findById(ownerId, id), (name) => this.store.findByName(ownerId, name));
    if (!metal) throw this.notFound(ref);
    return metal;
  }

  list(ownerId: OwnerId, query?: MetalQuery, window?: KeysetWindow): Promise<Metal[]> {
    return this.store.list(ownerId, query, window);
  }

  /** As `list`, with labels and interfaces as their stored JSON text: for answers that only pass them on. */
  listStored(ownerId: OwnerId, query?: MetalQuery, window?: KeysetWindow): Promise<StoredMetal[]> {
    return this.store.listStored(ownerId, query, window);
  }

  /** The in-memory list's figures (SQLite), for /metrics. */
  listViewStats(): ListViewMetrics | undefined {
    return this.store.listViewStats?.();
  }

  /** The unfiltered page as one joined JSON string, when the store can give it (else undefined: use `listStored`). */
  listPageJson(ownerId: OwnerId, window: KeysetWindow): Promise<JoinedPage | undefined> {
    return this.store.listPageJson(ownerId, window);
  }

  /**
   * Many references (IDs or names) to the owner's metals at once, in the order asked, by two queries
   * whatever their number; an unknown one is "not found" like `get`.
   */
  async getMany(ownerId: OwnerId, refs: string[]): Promise<{ id: TipsId; name: string }[]> {
    const ids: TipsId[] = [];
    const names: string[] = [];
    for (const r of refs) {
      if (!looksLikeId(r)) names.push(r);
      else if (isId('metal', r)) ids.push(r as TipsId);
    }
    const found = await this.store.findMany(ownerId, ids, names);
    const byId = new Map(found.map((m) => [m.id as string, m]));
    const byName = new Map(found.map((m) => [m.name, m]));
    return refs.map((r) => {
      const m = looksLikeId(r) ? byId.get(r) : byName.get(r);
      if (!m) throw this.notFound(r);
      return m;
    });
  }

  /** The IDs of the owner's metals that hold any of these MACs (asked in chunks: no parameter limit). */
  async idsHoldingMacs(ownerId: OwnerId, macs: Mac[]): Promise<Set<string>> {
    const out = new Set<string>();
    for (let i = 0; i < macs.length; i += MAC_CHUNK) for (const id of await this.store.metalIdsHoldingMacs(ownerId, macs.slice(i, i + MAC_CHUNK))) out.add(id);
    return out;
  }

  /**
   * Which of the owner's metals holds this MAC. Used by discovery to decide a registration among
   * the gateway owner's metals only (T6): another owner's metal is never looked at.
   */
  async findByMac(ownerId: OwnerId, mac: Mac): Promise<{ metal: Metal; interfaceName: string } | undefined> {
    const [holder] = await this.store.findMacHolders(ownerId, [mac]);
    if (!holder) return undefined;
    const metal = await this.store.findById(holder.ownerId, holder.metalId);
    return metal && { metal, interfaceName: holder.interfaceName };
  }

  private notFound(ref: string): MetalError {
    return new MetalError('metal_not_found', `no metal "${ref}"`, 'metal');
  }

  private async assertMacsFree(ownerId: OwnerId, self: TipsId | undefined, interfaces: MetalInterface[]): Promise<void> {
    // Only the owner's own metals: a MAC is unique per owner, so no answer tells one owner that
    // another holds a MAC (threat model, I5).
    const holders = await this.store.findMacHolders(ownerId, interfaces.map((i) => i.mac));
    const clash = holders.find((h) => h.metalId !== self);
    if (!clash) return;
    const n = interfaces.findIndex((i) => i.mac === clash.mac);
    throw new MetalError(
      'mac_taken',
      `MAC ${clash.mac} already belongs to a metal (held by your metal "${clash.metalName}", interface ${clash.interfaceName})`,
      `interfaces[${n}].mac`,
    );
  }

  /**
   * Refuses an interface list that would silently break a Space membership: an interface a Space
   * links the metal by would vanish, or a Phase 1 Space's interface would no longer be PXE-capable
   * (T4). Names every such Space; `dropMemberships: true` is how the owner says to drop them.
   */
  private async assertMembershipsKept(current: Metal, next: MetalInterface[], tx: Tx): Promise<void> {
    if (!this.memberships) return;
    const byName = new Map(next.map((i) => [i.name, i]));
    const broken: string[] = [];
    for (const m of await this.memberships(current.id, tx)) {
      const gone = m.interfaces.filter((n) => !byName.has(n));
      const notPxe = m.phase === 1 ? m.interfaces.filter((n) => byName.has(n) && !byName.get(n)!.pxe) : [];
      if (gone.length === 0 && notPxe.length === 0) continue;
      const why = [...gone.map((n) => `${n} would vanish`), ...notPxe.map((n) => `${n} would no longer be PXE-capable`)].join(', ');
      broken.push(`"${m.spaceName}"${m.isDefault ? ' (its default Space)' : ''}: ${why}`);
    }
    if (broken.length === 0) return;
    throw new MetalError(
      'interfaces_in_use',
      `this interface list breaks metal "${current.name}"'s membership of Space ${broken.join('; Space ')}; keep those interfaces, remove the memberships first, or drop them explicitly (dropMemberships: true, tips metal update --drop-memberships)`,
      'interfaces',
    );
  }

  private async write(ownerId: OwnerId, metal: Metal, op: () => Promise<void>): Promise<void> {
    try {
      await op();
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
      // Lost a race with a concurrent writer: report it as the check above would have.
      await this.assertMacsFree(ownerId, metal.id, metal.interfaces);
      throw new MetalError('metal_name_taken', `you already have a metal named "${metal.name}"`, 'name');
    }
  }
}
