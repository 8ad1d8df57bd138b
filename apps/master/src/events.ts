import type { Mac, OwnerId, TipsId } from '@tips/core';

/**
 * In-process domain events: how one domain reacts to another's changes without touching its
 * tables. Handlers run in registration order and are awaited, so a caller sees their effects.
 */
export interface DomainEventMap {
  'metal.deleted': { ownerId: OwnerId; metalId: TipsId; macs: Mac[] };
  'metal.interfaces.changed': { ownerId: OwnerId; metalId: TipsId; added: Mac[]; removed: Mac[]; removedNames: string[] };
  'space.membership.changed': { ownerId: OwnerId; metalId: TipsId; spaceId: string };
  'space.deleted': { ownerId: OwnerId; spaceId: string };
  /** A Phase 1 job was created or changed state (provisioning); `installed` is what Phase 2 waits for. */
  'provisioning.job.changed': { ownerId: OwnerId; metalId: TipsId; jobId: string; state: string; reason: string | null };
  /** A Space's Glaze was set or cleared (Phase 3 Spaces notify their metals: T15). */
  'space.glaze.changed': { ownerId: OwnerId; spaceId: string; phase: number; glazeId: string | null };
  /**
   * A metal's credentials or standing changed so that an open authenticated channel (the MQTT
   * connection) must authenticate again: certificates revoked or retired, the metal deleted or blocked.
   */
  'metal.access.revoked': { ownerId: OwnerId; metalId: TipsId; reason: 'retired' | 'revoked' | 'deleted' | 'blocked' };
  /** A metal enrolled over EST with an enrollment secret (onboarding records move to `enrolled`). */
  'enrollment.enrolled': { ownerId: OwnerId; metalId: TipsId; secretId: string };
}

type Handler<K extends keyof DomainEventMap> = (event: DomainEventMap[K]) => Promise<void> | void;

export class DomainEvents {
  private readonly handlers = new Map<keyof DomainEventMap, Handler<keyof DomainEventMap>[]>();

  on<K extends keyof DomainEventMap>(name: K, handler: Handler<K>): void {
    const list = this.handlers.get(name) ?? [];
    list.push(handler as Handler<keyof DomainEventMap>);
    this.handlers.set(name, list);
  }

  async emit<K extends keyof DomainEventMap>(name: K, event: DomainEventMap[K]): Promise<void> {
    for (const h of this.handlers.get(name) ?? []) await h(event);
  }
}
