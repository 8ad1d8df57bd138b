import type { InterfaceType, Mac, OwnerId, TipsId } from '@tips/core';
import type { Engine } from '../provisioning/model.ts';

/** One network interface of a metal (T3). */
export interface MetalInterface {
  name: string;
  mac: Mac;
  type: InterfaceType;
  pxe: boolean;
}

/** A Metal Object (TMO): the in-cloud twin of a device (T3). */
export interface Metal {
  id: TipsId;
  ownerId: OwnerId;
  name: string;
  labels: Record<string, string>;
  interfaces: MetalInterface[];
  /** Its Phase 1 engine (A5); null = its default Space's. */
  engine: Engine | null;
  createdAt: string;
  updatedAt: string;
}

export const MAX_INTERFACES = 16;
export const MAX_LABELS = 32;

/**
 * A metal as its row holds it for the list: labels and interfaces are still the JSON text the store
 * wrote (`JSON.stringify` of the model's fields, in the model's order), so a page can splice them
 * into the answer instead of parsing and re-serializing 200 values (bench/RESULTS.md, metal-list).
 */
export interface StoredMetal {
  id: TipsId;
  name: string;
  /** JSON of `Metal['labels']`. */
  labelsJson: string;
  /** JSON of `Metal['interfaces']` (`[{ name, mac, type, pxe }]`). */
  interfacesJson: string;
  engine: Engine | null;
  createdAt: string;
  updatedAt: string;
}

/**
 * One item of the metal list as JSON — the list schema's fields in its order, exactly the text
 * Fastify's serializer writes for it. The list route splices it into a page; the store keeps it in
 * `metals.list_item` (0015) so SQLite can hand a page over as one joined string.
 */
export const storedMetalJson = (m: StoredMetal): string =>
  `{"id":${JSON.stringify(m.id)},"name":${JSON.stringify(m.name)},"labels":${m.labelsJson},"interfaces":${m.interfacesJson},"engine":${JSON.stringify(m.engine)},"createdAt":${JSON.stringify(m.createdAt)},"updatedAt":${JSON.stringify(m.updatedAt)}}`;
