import type { OwnerId } from '@tips/core';

/**
 * Information exchange (issue 11): what a metal posts about itself — a heartbeat each poll (only
 * the latest is kept) and a small telemetry stream — and the application tokens an owner mints so
 * that one application reads one device's data and nothing else.
 */
export type TelemetryValue = number | string | boolean;

export interface TelemetrySample {
  id: string;
  metalId: string;
  ownerId: OwnerId;
  /** When the metal says it measured (its clock). */
  at: string;
  /** When the master stored it (the order of the stream and what `since` compares). */
  receivedAt: string;
  values: Record<string, TelemetryValue>;
}

export interface Heartbeat {
  metalId: string;
  ownerId: OwnerId;
  at: string;
  receivedAt: string;
  values: Record<string, TelemetryValue>;
}

export type AppScope = 'telemetry:read';
export const APP_SCOPES: readonly AppScope[] = ['telemetry:read'];

/** An application token as listed (never its secret): one device, a few scopes, a lifetime. */
export interface AppToken {
  id: string;
  ownerId: OwnerId;
  metalId: string;
  name: string;
  scope: AppScope[];
  createdAt: string;
  expiresAt: string;
}

/** `tipsapp_` and 43 base64url characters (256 random bits): never mistaken for an owner's `tips_` token. */
export const APP_TOKEN_PREFIX = 'tipsapp_';
export const APP_TOKEN_FORMAT = /^tipsapp_[A-Za-z0-9_-]{43}$/;
export const DEFAULT_APP_TOKEN_SECONDS = 90 * 86_400;
export const MAX_APP_TOKEN_SECONDS = 365 * 86_400;

/** Bounds of one post: a small stream, not a time-series database. */
export const MAX_TELEMETRY_BYTES = 4096;
export const MAX_TELEMETRY_VALUES = 32;
export const MAX_STRING_VALUE = 256;
export const TELEMETRY_KEY = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;
/** Per metal and master: a burst, then this many per minute (a token bucket). */
export const RATE = { telemetry: { burst: 20, perMinute: 60 }, heartbeat: { burst: 5, perMinute: 12 } } as const;
/** Samples older than this are dropped as new ones arrive. */
export const RETENTION_DAYS = 30;
