import type { InterfaceType, Mac, OwnerId, TipsId } from '@tips/core';

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
  createdAt: string;
  updatedAt: string;
}

export const MAX_INTERFACES = 16;
export const MAX_LABELS = 32;
