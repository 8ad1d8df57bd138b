import type { GatewayId, OwnerId } from '@tips/core';
import type { KeysetWindow } from '../../db/keyset.ts';
import type { Gateway, GatewayCertificate, QueuedCommand, TableSnapshot } from './model.ts';

/** One use of a nonce: the signed request's gateway, nonce and timestamp (unix ms). */
export interface NonceUse {
  gatewayId: GatewayId;
  nonce: string;
  timestamp: number;
}

/** Storage port of the gateways domain (tables `gateways`, `gateway_nonces`, `gateway_tables`, `gateway_commands`). */
export interface GatewayStore {
  insert(gateway: Gateway, enrollmentTokenHash: string): Promise<void>;
  findById(id: GatewayId): Promise<Gateway | undefined>;
  findByName(ownerId: OwnerId, name: string): Promise<Gateway | undefined>;
  /** Oldest first by (createdAt, id); with a window, at most `limit` after its position. */
  list(ownerId: OwnerId, window?: KeysetWindow): Promise<Gateway[]>;
  /**
   * Deletes the gateway with its key, nonces, snapshot and queued commands; with `revokedAt`, in the
   * same transaction marks every certificate issued to it revoked.
   */
  delete(ownerId: OwnerId, id: GatewayId, revokedAt?: string): Promise<boolean>;
  /** Records a certificate issued to a gateway (table `gateway_certificates`). */
  recordCertificate(cert: GatewayCertificate): Promise<void>;
  findCertificate(serial: string): Promise<GatewayCertificate | undefined>;
  /**
   * Spends an enrollment token: in one transaction, binds `publicKey` to the gateway whose unspent,
   * unexpired token has this hash. Exactly one of any number of concurrent callers wins.
   */
  enroll(tokenHash: string, now: string, publicKey: string, enrolledName: string | null): Promise<Gateway | undefined>;
  touch(id: GatewayId, at: string): Promise<void>;
  /**
   * Records nonce uses in one statement; for each, false when the same (gateway, timestamp, nonce)
   * was already recorded (before, or earlier in the same batch): a replayed request.
   */
  rememberNonces(nonces: NonceUse[]): Promise<boolean[]>;
  /** Forgets nonces whose signed timestamp is before `unixMs` (the window refuses those anyway). */
  forgetNoncesBefore(unixMs: number): Promise<void>;
  putTable(snapshot: TableSnapshot): Promise<void>;
  getTable(id: GatewayId): Promise<TableSnapshot | undefined>;
  /** When each of these gateways last reported its table (gateways that never did are absent): one query, no rows read. */
  tableVersions(ids: GatewayId[]): Promise<Map<GatewayId, string>>;
  enqueue(command: QueuedCommand, keepAtMost: number): Promise<void>;
  pending(id: GatewayId): Promise<QueuedCommand[]>;
  ack(id: GatewayId, commandId: string): Promise<boolean>;
}
