import { type TSchema, Type } from '@sinclair/typebox';
import { NAME_MAX, NAME_RULE } from '@tips/core';
import { ErrorSchema } from './errors.ts';

/** Standard error responses for OpenAPI. */
export const errorResponses = (...codes: number[]): Record<number, typeof ErrorSchema> =>
  Object.fromEntries(codes.map((c) => [c, ErrorSchema]));

/** The name of a metal, Space, Glaze, gateway, key, owner or API token; `parseName` (@tips/core) is the rule. */
export const NameField = Type.String({ minLength: 1, maxLength: NAME_MAX, description: `a name: ${NAME_RULE}` });
/** A reference: an ID (looked up only as an ID) or a name. */
export const Ref = Type.String({ minLength: 1, maxLength: NAME_MAX, description: 'an ID, or a name (a string shaped like an ID is only ever an ID)' });
export const Items = <T extends TSchema>(item: T) => Type.Object({ items: Type.Array(item) });
