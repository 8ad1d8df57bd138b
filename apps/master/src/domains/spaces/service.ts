import { findByRef, type GlazeId, newId, type OwnerId, parseName, parsePhase, type SpaceId, type TipsId } from '@tips/core';
import { isUniqueViolation } from '../../db/database.ts';
import type { KeysetWindow } from '../../db/keyset.ts';
import type { DomainEvents } from '../../events.ts';
import type { Clock, Random } from '../../ports.ts';
import type { CreateMetalInput, MetalService } from '../metals/service.ts';
import { DEFAULT_ENGINE, parseEngine, parseEngineRules } from '../provisioning/model.ts';
import type { Metal } from '../metals/model.ts';
import { SpaceError } from './errors.ts';
import type { Space, SpaceMember } from './model.ts';
import type { MembershipOfMetal, SpaceStore } from './store.ts';

/** What spaces need to know about Glazes; the glazes domain provides it (no cross-table reads). */
export interface GlazeLookup {
  /** Resolves an owner's Glaze by ID or name and says whether it lists the Space as allowed. */
  resolveForSpace(ownerId: OwnerId, glazeRef: string, spaceId: SpaceId): Promise<{ id: GlazeId; allowed: boolean }>;
}

export interface AddMemberInput {
  metal: string;
  interfaces: string[];
  default?: boolean;
}

/** Spaces (T4): groups of metals per phase; exactly one default Phase 1 Space per metal. */
export class SpaceService {
  private glazes?: GlazeLookup;

  constructor(
    private readonly store: SpaceStore,
    private readonly metals: MetalService,
    private readonly events: DomainEvents,
    private readonly clock: Clock,
    private readonly random: Random,
  ) {
    events.on('metal.deleted', (e) => this.store.removeMetal(e.metalId));
    events.on('metal.interfaces.changed', (e) => this.dropBrokenMemberships(e.ownerId, e.metalId, e.removedNames));
    metals.useMemberships((metalId, tx) => this.store.membershipsOfMetal(metalId, tx));
  }

  /**
   * After an interface change the owner confirmed (`dropMemberships`; without it the metals domain
   * refuses one that breaks a membership): vanished interfaces leave their Spaces, and a Phase 1
   * membership whose interface is no longer PXE-capable is removed (T4).
   */
  private async dropBrokenMemberships(ownerId: OwnerId, metalId: TipsId, removedNames: string[]): Promise<void> {
    await this.store.removeInterfaces(metalId, removedNames);
    const phase1 = (await this.store.membershipsOfMetal(metalId)).filter((m) => m.phase === 1);
    if (phase1.length === 0) return;
    const metal = await this.metals.get(ownerId, metalId);
    const pxe = new Set(metal.interfaces.filter((i) => i.pxe).map((i) => i.name));
    for (const m of phase1) if (!m.interfaces.every((n) => pxe.has(n))) await this.store.removeMember(m.spaceId, metalId);
  }

  /** Late binding: glazes and spaces each need the other's answers. */
  useGlazes(glazes: GlazeLookup): void {
    this.glazes = glazes;
  }

  async create(ownerId: OwnerId, input: { name: string; phase: number }): Promise<Space> {
    const name = parseName(input.name);
    const phase = parsePhase(input.phase);
    if (await this.store.findByName(ownerId, name)) throw this.nameTaken(name);
    const now = this.clock.now().toISOString();
    const space: Space = { id: newId('space', this.random.bytes(16)), ownerId, name, phase, glazeId: null, engine: DEFAULT_ENGINE, engineRules: [], createdAt: now, updatedAt: now };
    try {
      await this.store.insert(space);
    } catch (err) {
      if (isUniqueViolation(err)) throw this.nameTaken(name);
      throw err;
    }
    return space;
  }

  async get(ownerId: OwnerId, ref: string): Promise<Space> {
    const space = await findByRef('space', ref, (id) => this.store.findById(ownerId, id), (name) => this.store.findByName(ownerId, name));
    if (!space) throw new SpaceError('space_not_found', `no Space "${ref}"`, 'space');
    return space;
  }

  /** Every member's TIPS ID (one query, no interfaces): the Phase 3 fan-out's recipients. */
  memberIds(spaceId: SpaceId): Promise<TipsId[]> {
    return this.store.memberIds(spaceId);
  }

  /** The Space's members by metal ID, a window at a time (a member is a metal with its linking interfaces). */
  members(spaceId: SpaceId, window?: KeysetWindow): Promise<SpaceMember[]> {
    return this.store.members(spaceId, window);
  }

  list(ownerId: OwnerId, phase?: number, window?: KeysetWindow): Promise<Space[]> {
    return this.store.list(ownerId, phase, window);
  }

  async update(ownerId: OwnerId, ref: string, input: { name?: string; glaze?: string | null; engine?: string; engineRules?: unknown[] }): Promise<Space> {
    const space = await this.get(ownerId, ref);
    const next: Space = { ...space, updatedAt: this.clock.now().toISOString() };
    if (input.name !== undefined) {
      next.name = parseName(input.name);
      const other = await this.store.findByName(ownerId, next.name);
      if (other && other.id !== space.id) throw this.nameTaken(next.name);
    }
    if (input.engine !== undefined) next.engine = parseEngine(input.engine);
    if (input.engineRules !== undefined) next.engineRules = parseEngineRules(input.engineRules);
    if (input.glaze === null) next.glazeId = null;
    else if (input.glaze !== undefined) {
      if (!this.glazes) throw new Error('glaze lookup not wired');
      const glaze = await this.glazes.resolveForSpace(ownerId, input.glaze, space.id);
      if (!glaze.allowed) {
        throw new SpaceError('glaze_not_allowed_in_space', `Glaze "${input.glaze}" does not list Space "${space.name}" among the Spaces allowed to use it`, 'glaze');
      }
      next.glazeId = glaze.id;
    }
    await this.store.update(next);
    if (input.glaze !== undefined) await this.events.emit('space.glaze.changed', { ownerId, spaceId: space.id, phase: space.phase, glazeId: next.glazeId });
    return next;
  }

  async delete(ownerId: OwnerId, ref: string): Promise<void> {
    const space = await this.get(ownerId, ref);
    await this.store.delete(ownerId, space.id);
    await this.events.emit('space.deleted', { ownerId, spaceId: space.id });
  }

  async addMember(ownerId: OwnerId, spaceRef: string, input: AddMemberInput): Promise<SpaceMember & { spaceId: SpaceId }> {
    const space = await this.get(ownerId, spaceRef);
    const metal = await this.metals.get(ownerId, input.metal);
    const names = [...new Set(input.interfaces)];
    const isDefault = input.default ?? false;
    this.checkMembership(space, metal, names, isDefault);
    const member: SpaceMember = { metalId: metal.id, interfaces: names, isDefault };
    // Checked again in the membership's transaction, against the metal as it is there, its row
    // locked: an interface change racing this request (metals' update locks the same row) either
    // committed before — and is seen — or waits, then sees this membership (T4).
    await this.store.putMember(space.id, member, async (tx) => this.checkMembership(space, await this.metals.getLocked(ownerId, metal.id, tx), names, isDefault));
    await this.events.emit('space.membership.changed', { ownerId, metalId: metal.id, spaceId: space.id });
    // Only the membership: answering with the whole Space would grow with every metal added.
    return { spaceId: space.id, ...member };
  }

  /**
   * A new metal made in Spaces at once (onboarding, Z2): the metal, its interfaces and every
   * membership in one transaction, each membership checked as `addMember` checks it against the
   * metal as it is written — a refused one undoes the metal. The Spaces are the ones the caller
   * read (they are not read again), at most one of them the default. After the commit, one
   * `space.membership.changed` for the metal (its listeners react to the metal, not to each Space).
   */
  async createMetalInSpaces(ownerId: OwnerId, input: CreateMetalInput, place: (metal: Metal) => { space: Space; interfaces: string[]; default: boolean }[]): Promise<Metal> {
    let last: SpaceId | undefined;
    const metal = await this.metals.create(ownerId, input, async (m, tx) => {
      const placed = place(m);
      if (placed.filter((p) => p.default).length > 1) throw new SpaceError('default_space_must_be_phase1', 'a metal has at most one default Space', 'default');
      for (const p of placed) {
        if (p.space.ownerId !== ownerId) throw new SpaceError('space_not_found', `no Space "${p.space.id}"`, 'space');
        const names = [...new Set(p.interfaces)];
        this.checkMembership(p.space, m, names, p.default);
        await this.store.insertNewMember(p.space.id, { metalId: m.id, interfaces: names, isDefault: p.default }, tx);
        last = p.space.id;
      }
    });
    if (last) await this.events.emit('space.membership.changed', { ownerId, metalId: metal.id, spaceId: last });
    return metal;
  }

  /** The interfaces exist on the metal; a default is a Phase 1 Space; Phase 1 is over one PXE-capable interface. */
  private checkMembership(space: Space, metal: Metal, names: string[], isDefault: boolean): void {
    if (names.length === 0) throw new SpaceError('interface_not_found', 'name at least one interface of the metal', 'interfaces');
    for (const [n, name] of names.entries()) {
      if (!metal.interfaces.some((i) => i.name === name)) {
        const has = metal.interfaces.map((i) => i.name).join(', ');
        throw new SpaceError('interface_not_found', `metal "${metal.name}" has no interface "${name}" (it has ${has})`, `interfaces[${n}]`);
      }
    }
    if (isDefault && space.phase !== 1) {
      throw new SpaceError('default_space_must_be_phase1', `Space "${space.name}" is a Phase ${space.phase} Space; a metal's default Space must be a Phase 1 Space`, 'default');
    }
    if (space.phase === 1) {
      const iface = metal.interfaces.find((i) => i.name === names[0]);
      if (names.length !== 1 || !iface?.pxe) {
        throw new SpaceError('phase1_needs_one_pxe_interface', 'Phase 1 provisions a metal over exactly one PXE-capable interface', 'interfaces');
      }
    }
  }

  async removeMember(ownerId: OwnerId, spaceRef: string, metalRef: string): Promise<void> {
    const space = await this.get(ownerId, spaceRef);
    const metal = await this.metals.get(ownerId, metalRef);
    if (!(await this.store.removeMember(space.id, metal.id))) {
      throw new SpaceError('member_not_found', `metal "${metal.name}" is not in Space "${space.name}"`, 'metal');
    }
    await this.events.emit('space.membership.changed', { ownerId, metalId: metal.id, spaceId: space.id });
  }

  /** Every Space a metal is in, with its interfaces and which one is the default (for show/discovery). */
  membershipsOfMetal(metalId: TipsId): Promise<MembershipOfMetal[]> {
    return this.store.membershipsOfMetal(metalId);
  }

  /** The metal's default Space, which is always Phase 1 (T4, T6). */
  async defaultSpaceOf(metalId: TipsId): Promise<MembershipOfMetal | undefined> {
    return (await this.store.membershipsOfMetal(metalId)).find((m) => m.isDefault && m.phase === 1);
  }

  /** The default Phase 1 Space of each of these metals that has one (one query for a page of metals). */
  defaultsOfMetals(metalIds: TipsId[]): Promise<{ metalId: TipsId; spaceId: SpaceId; spaceName: string }[]> {
    return this.store.defaultsOfMetals(metalIds);
  }

  spacesUsingGlaze(glazeId: GlazeId): Promise<Space[]> {
    return this.store.spacesUsingGlaze(glazeId);
  }

  private nameTaken(name: string): SpaceError {
    return new SpaceError('space_name_taken', `you already have a Space named "${name}"`, 'name');
  }
}
