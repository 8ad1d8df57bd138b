import type { Mac, OwnerId, TipsId } from '@tips/core';
import type { Tx } from '../../db/database.ts';
import type { JoinedPage, KeysetWindow } from '../../db/keyset.ts';
import type { Metal, StoredMetal } from './model.ts';

export interface MacHolder {
  mac: Mac;
  metalId: TipsId;
  ownerId: OwnerId;
  metalName: string;
  interfaceName: string;
}

export interface MetalQuery {
  name?: string;
  label?: { key: string; value: string };
  /** Only these metals (a profile query of the updates domain chose them). */
  ids?: readonly string[];
  /** Names starting with this text (case-sensitive). */
  namePrefix?: string;
  /**
   * Only metals in this set (chosen by another domain, e.g. the interface states of the gateways'
   * tables). Large sets are not sent to the database as a list: the store walks the owner's metals
   * in list order and keeps the members, so there is no parameter limit to hit.
   */
  idSet?: ReadonlySet<string>;
}

/** Storage port of the metals domain (tables `metals`, `metal_interfaces`). */
export interface MetalStore {
  /** With `within`: run in the insert's transaction after the metal's rows (a new metal's memberships: one unit of work). */
  insert(metal: Metal, within?: (tx: Tx) => Promise<void>): Promise<void>;
  /**
   * Replaces the metal's row and its whole interface list in one transaction. With `guard`: first
   * locks the metal's row, then runs `guard` in the transaction (it throws to refuse), so what it
   * checked cannot change before the write commits.
   */
  update(metal: Metal, guard?: (tx: Tx) => Promise<void>): Promise<void>;
  /** The metal, its row locked until `tx` ends (a check of the metal that must hold until the caller's write commits). */
  findByIdLocked(ownerId: OwnerId, id: TipsId, tx: Tx): Promise<Metal | undefined>;
  delete(ownerId: OwnerId, id: TipsId): Promise<boolean>;
  findById(ownerId: OwnerId, id: TipsId): Promise<Metal | undefined>;
  findByName(ownerId: OwnerId, name: string): Promise<Metal | undefined>;
  /** The owner's metals, oldest first by (createdAt, id); with a window, at most `limit` after its position. */
  list(ownerId: OwnerId, query?: MetalQuery, window?: KeysetWindow): Promise<Metal[]>;
  /** The same rows as `list`, with labels and interfaces left as the stored JSON text (the list route's fast path). */
  listStored(ownerId: OwnerId, query?: MetalQuery, window?: KeysetWindow): Promise<StoredMetal[]>;
  /**
   * The unfiltered page of `window` (limit + 1 rows, as `readPage` asks) as the stored list items
   * joined into one string by the database, and the next position; undefined when this store cannot
   * (PostgreSQL today, or a row without its stored item) — then read `listStored`.
   */
  listPageJson(ownerId: OwnerId, window: KeysetWindow): Promise<JoinedPage | undefined>;
  /** SQLite: the in-memory list (list-view.ts) — items, owners, reloads — and pages answered from it or the database. */
  listViewStats?(): ListViewMetrics | undefined;
  /** Which of the owner's metals hold these MACs: a MAC is unique per owner only (0005, T6). */
  findMacHolders(ownerId: OwnerId, macs: Mac[]): Promise<MacHolder[]>;
  /** IDs of the owner's metals holding any of these MACs (the list's state filter: `metal_interfaces` alone, no metal rows read). */
  metalIdsHoldingMacs(ownerId: OwnerId, macs: Mac[]): Promise<TipsId[]>;
  /** The owner's metals among these IDs and names (one query each), for answers about many metals at once. */
  findMany(ownerId: OwnerId, ids: TipsId[], names: string[]): Promise<{ id: TipsId; name: string }[]>;
}

export interface ListViewMetrics {
  owners: number;
  items: number;
  reloads: number;
  pagesFromMemory: number;
  pagesFromDatabase: number;
}
