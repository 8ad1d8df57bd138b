import { hash, timingSafeEqual } from 'node:crypto';
import { type TSchema, Type } from '@sinclair/typebox';
import { InvalidValueError } from '@tips/core';
import type { JoinedPage, KeysetPosition, KeysetWindow } from '../db/keyset.ts';
import { DomainError, registerStatusTable } from './errors.ts';

export const DEFAULT_PAGE_LIMIT = 100;
export const MAX_PAGE_LIMIT = 1000;

registerStatusTable<'invalid_cursor'>('pagination', { invalid_cursor: 400 });

/** The query parameters every list route takes (TypeBox, so they appear in /openapi.json). */
export const PageQuery = {
  limit: Type.Optional(Type.String({ maxLength: 8, description: `items per page, an integer from 1 to ${MAX_PAGE_LIMIT} (default ${DEFAULT_PAGE_LIMIT})` })),
  cursor: Type.Optional(Type.String({ description: "the previous page's nextCursor (opaque); omit for the first page" })),
};

/** One page of a list: the items, and the cursor of the next page (null on the last). */
export const Page = <T extends TSchema>(item: T) =>
  Type.Object({
    items: Type.Array(item),
    nextCursor: Type.Union([Type.String(), Type.Null()], { description: 'pass as ?cursor= for the next page; null when this is the last page' }),
  });

export interface PageParams {
  limit?: string;
  cursor?: string;
}

export interface PageOf<T> {
  items: T[];
  nextCursor: string | null;
}

// A cursor is base64url(JSON [list, at, id] ‖ 8-byte check). The check is not a secret: a cursor
// grants nothing (every query stays WHERE owner_id = caller), it only makes a mangled or truncated
// cursor a clear 400 instead of a silently different page.
const CHECK_BYTES = 8;
const MAX_CURSOR_CHARS = 512;
const CHECK_PREFIX = Buffer.from('tips-cursor-v1\0');
// One-shot hash: createHash builds a Hash object (a stream) per call.
const check = (payload: Buffer) => hash('sha256', Buffer.concat([CHECK_PREFIX, payload]), 'buffer').subarray(0, CHECK_BYTES);

export function encodeCursor(list: string, p: KeysetPosition): string {
  const payload = Buffer.from(JSON.stringify([list, p.at, p.id]), 'utf8');
  return Buffer.concat([payload, check(payload)]).toString('base64url');
}

const invalidCursor = (why: string) => new DomainError('pagination', 'invalid_cursor', `cursor is not one this list gave out (${why}); start again without cursor`, 'cursor');

/** Decodes a cursor given out by `encodeCursor` for the same list; anything else is a 400 invalid_cursor. */
export function decodeCursor(list: string, cursor: string): KeysetPosition {
  if (cursor.length > MAX_CURSOR_CHARS || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw invalidCursor('not base64url');
  const raw = Buffer.from(cursor, 'base64url');
  if (raw.length <= CHECK_BYTES) throw invalidCursor('too short');
  const payload = raw.subarray(0, raw.length - CHECK_BYTES);
  if (!timingSafeEqual(check(payload), raw.subarray(raw.length - CHECK_BYTES))) throw invalidCursor('damaged');
  let v: unknown;
  try {
    v = JSON.parse(payload.toString('utf8'));
  } catch {
    throw invalidCursor('damaged');
  }
  if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === 'string')) throw invalidCursor('damaged');
  const [kind, at, id] = v as [string, string, string];
  if (kind !== list) throw invalidCursor(`it belongs to another list, ${kind}`);
  return { at, id };
}

/** Validates `limit` and `cursor` into the window a store reads (limit + 1: one more row tells whether a next page exists). */
export function pageWindow(list: string, q: PageParams): KeysetWindow {
  const limit = q.limit === undefined ? DEFAULT_PAGE_LIMIT : /^[0-9]{1,4}$/.test(q.limit) ? Number(q.limit) : Number.NaN;
  if (!(limit >= 1 && limit <= MAX_PAGE_LIMIT)) throw new InvalidValueError('limit', `limit must be an integer from 1 to ${MAX_PAGE_LIMIT}`);
  return { limit: limit + 1, ...(q.cursor !== undefined ? { after: decodeCursor(list, q.cursor) } : {}) };
}

/**
 * Reads one page of a list: `fetch` gets the window (limit + 1 rows after the cursor, in the list's
 * order); the extra row, if any, is dropped and the last kept row becomes the next cursor.
 */
export async function readPage<T, O = T>(
  list: string,
  q: PageParams,
  fetch: (window: KeysetWindow) => Promise<T[]>,
  positionOf: (item: T) => KeysetPosition,
  out: (item: T) => O = (x) => x as unknown as O,
): Promise<PageOf<O>> {
  const window = pageWindow(list, q);
  const rows = await fetch(window);
  const limit = window.limit - 1;
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return { items: items.map(out), nextCursor: rows.length > limit && last ? encodeCursor(list, positionOf(last)) : null };
}

/**
 * As `readPage`, for items the caller already has as JSON text (`json` writes one): the page is one
 * string, `{"items":[…],"nextCursor":…}`, the document the `Page` schema's serializer would write
 * from the parsed items — without parsing stored JSON into objects only to serialize them again.
 * Send it with `Content-Type: application/json` (a string with a JSON type skips the serializer).
 */
export async function readPageJson<T>(
  list: string,
  q: PageParams,
  fetch: (window: KeysetWindow) => Promise<T[]>,
  positionOf: (item: T) => KeysetPosition,
  json: (item: T) => string,
): Promise<string> {
  const window = pageWindow(list, q);
  const rows = await fetch(window);
  const limit = window.limit - 1;
  const n = Math.min(rows.length, limit);
  let body = '{"items":[';
  for (let i = 0; i < n; i++) body += i === 0 ? json(rows[i]!) : `,${json(rows[i]!)}`;
  const next = rows.length > limit && n > 0 ? encodeCursor(list, positionOf(rows[n - 1]!)) : null;
  return `${body}],"nextCursor":${JSON.stringify(next)}}`;
}

const PAGE_HEAD = Buffer.from('{"items":[');

/** The page document `readPageJson` writes, from a joined page, as bytes (no UTF-8 round trip). */
export function joinedPageBody(list: string, page: JoinedPage): Buffer {
  const tail = Buffer.from(`],"nextCursor":${JSON.stringify(page.next ? encodeCursor(list, page.next) : null)}}`);
  return page.items ? Buffer.concat([PAGE_HEAD, page.items, tail]) : Buffer.concat([PAGE_HEAD, tail]);
}

/** Strips the paging parameters from a route's query, leaving its filters. */
export function filtersOf<Q extends PageParams>(q: Q): Omit<Q, 'limit' | 'cursor'> {
  const { limit: _l, cursor: _c, ...rest } = q;
  return rest;
}
