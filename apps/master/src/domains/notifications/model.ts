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
  /** Ends the live sessions of a metal whose certificates were revoked (embedded broker); returns how many. */
  disconnect?(metalId: string): number;
  close(): Promise<void>;
}
