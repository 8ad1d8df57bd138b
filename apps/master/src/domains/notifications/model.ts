/** Contract C: the MQTT notification a metal gets on `tips/metal/<tipsId>` — a hint, never an order. */
export interface Notification {
  glazes: string[];
  spaceId: string;
  reason: 'glaze_set' | 'rollback';
  notBefore: string | null;
}

/**
 * Where notifications go (port): the embedded broker (aedes, in-process) or an external one
 * (Mosquitto, the master publishing as an MQTT client with its own certificate).
 */
export interface NotificationBus {
  /** mqtts:// URL metals subscribe at (what `GET /work` tells them). */
  readonly url: string;
  publish(topic: string, payload: Uint8Array): Promise<void>;
  /** Metals connected right now (embedded broker), or undefined when the broker is not ours. */
  connectedMetals(): number | undefined;
  /**
   * Closes the metal's open connections so it must authenticate again (its certificate was revoked,
   * it was retired, deleted or blocked): how many were closed, or undefined when the broker is not
   * ours (an external broker checks certificates only at connect; see the notifications README).
   */
  disconnectMetal(metalId: string): number | undefined;
  close(): Promise<void>;
}
