import { type TSchema, Type } from '@sinclair/typebox';
import { ErrorSchema } from './errors.ts';

/** Standard error responses for OpenAPI. */
export const errorResponses = (...codes: number[]): Record<number, typeof ErrorSchema> =>
  Object.fromEntries(codes.map((c) => [c, ErrorSchema]));

export const Ref = Type.String({ minLength: 1, maxLength: 128, description: 'an ID or a name' });
export const Items = <T extends TSchema>(item: T) => Type.Object({ items: Type.Array(item) });
