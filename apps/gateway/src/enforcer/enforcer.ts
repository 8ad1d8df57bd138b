// The Enforcer port (T7, T8, T11): turns the interface table into packet filtering and NAT.
import type { InterfaceRow } from '../table/table.ts';

/** One interface whose row changed: `row` is its row now, undefined when it left the table. */
export interface RowChange {
  mac: string;
  gatewayInterface: string;
  row: InterfaceRow | undefined;
}

/**
 * The gateway's boot services (T7): besides DHCP, the only gateway ports a Pending metal may reach,
 * and only on the gateway's LAN address. The boot servers (TFTP, HTTP boot of `ipxe.efi`) listen
 * here; `--boot-http-port` overrides the HTTP one.
 */
export const BOOT_PORTS = {
  /** TFTP (RFC 1350) for legacy BIOS PXE clients: the read request arrives on udp 69. */
  tftpUdp: 69,
  /** HTTP boot (UEFI HTTP boot and iPXE fetching `ipxe.efi` and what follows). */
  httpTcp: 8080,
} as const;

export interface Enforcer {
  /** Installs exactly the policy of these rows, atomically, replacing whatever was there (start-up, recovery). */
  apply(rows: InterfaceRow[]): Promise<void>;
  /**
   * Changes the policy of these interfaces only, atomically, leaving every other row's as it is:
   * the cost follows the number of changes, not the size of the table. Refused (apply_failed) when
   * the enforcer cannot vouch for what the kernel holds — before the first `apply`, after any
   * failed load — and then the caller renders the whole table with `apply`.
   */
  change(changes: RowChange[]): Promise<void>;
  /** Drops tracked connections of an address so a state change also cuts existing flows. */
  flushConnections(ip: string): Promise<void>;
  /** Current translated flows as the kernel tracks them. */
  sampleConnections(): Promise<string>;
}

export class EnforcerError extends Error {
  constructor(
    readonly code: 'apply_failed' | 'bad_name' | 'bad_port',
    message: string,
  ) {
    super(message);
    this.name = 'EnforcerError';
  }
}
