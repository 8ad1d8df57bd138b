// The Enforcer port (T7, T8, T11): turns the interface table into packet filtering and NAT.
import type { InterfaceRow } from '../table/table.ts';

export interface Enforcer {
  /** Installs exactly the policy of these rows, atomically, replacing whatever was there. */
  apply(rows: InterfaceRow[]): Promise<void>;
  /** Drops tracked connections of an address so a state change also cuts existing flows. */
  flushConnections(ip: string): Promise<void>;
  /** Current translated flows as the kernel tracks them. */
  sampleConnections(): Promise<string>;
}

export class EnforcerError extends Error {
  constructor(
    readonly code: 'apply_failed' | 'bad_name',
    message: string,
  ) {
    super(message);
    this.name = 'EnforcerError';
  }
}
