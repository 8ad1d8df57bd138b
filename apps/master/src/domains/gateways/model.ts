import type { GatewayId, OwnerId } from '@tips/core';

/** A TIPS gateway (TIPS-G) as the master knows it: owned, enrolled once with an Ed25519 key (T11). */
export interface Gateway {
  id: GatewayId;
  ownerId: OwnerId;
  name: string;
  /** SPKI PEM of the gateway's Ed25519 key; null until the gateway has enrolled. */
  publicKey: string | null;
  /** The name the gateway gave itself when enrolling (its host name), if any. */
  enrolledName: string | null;
  enrolledAt: string | null;
  /** When the one-time enrollment token stops working; null once spent. */
  enrollmentExpiresAt: string | null;
  createdAt: string;
  lastSeenAt: string | null;
}

/** A TLS client certificate the master issued to a gateway (its Ed25519 key, SAN `urn:tips:gateway:<id>`). */
export interface GatewayCertificate {
  /** Lower-case hex, as the certificate carries it. */
  serial: string;
  gatewayId: GatewayId;
  ownerId: OwnerId;
  /** Lower-case hex SHA-256 of the DER. */
  fingerprint: string;
  notBefore: string;
  notAfter: string;
  status: 'active' | 'revoked';
  createdAt: string;
  revokedAt: string | null;
}

/** The latest interface table a gateway reported (T11), kept as sent. */
export interface TableSnapshot {
  gatewayId: GatewayId;
  rows: Record<string, unknown>[];
  updatedAt: string;
}

/** Master → gateway commands over the channel; each carries an `id` the gateway acks. */
export type ChannelCommand =
  | { type: 'clear'; mac: string }
  | { type: 'block'; tipsId: string; macs: string[]; reason?: string }
  | { type: 'unblock'; mac: string };

export interface QueuedCommand {
  id: string;
  gatewayId: GatewayId;
  seq: number;
  command: ChannelCommand;
  createdAt: string;
}

export const ENROLLMENT_TTL_MS = 24 * 60 * 60 * 1000;
/** How far a request's timestamp may be from the master's clock, and how long nonces are kept. */
export const SIGNATURE_WINDOW_MS = 60_000;
export const MAX_TABLE_ROWS = 10_000;
export const MAX_TABLE_BYTES = 8 * 1024 * 1024;
/** Oldest commands beyond this many per gateway are dropped (a gateway gone for long resyncs by re-registering). */
export const MAX_QUEUED_COMMANDS = 10_000;
/** Gateway certificates are short-lived like metal certificates; the gateway renews them (POST /certificate) well before. */
export const GATEWAY_CERT_LIFETIME_HOURS = 7 * 24;
