// Numbers from RFC 2131 (BOOTP/DHCP header), RFC 2132 (options), RFC 4578 (PXE options 93, 97)
// and RFC 3396 (long options). Names follow the specifications.

export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;
export const HTYPE_ETHERNET = 1;
export const HLEN_ETHERNET = 6;

/** 99.130.83.99 (RFC 2131 §3). */
export const MAGIC_COOKIE = Uint8Array.of(99, 130, 83, 99);

/** Fixed BOOTP header: op..file, RFC 2131 Figure 1. */
export const BOOTP_HEADER_LENGTH = 236;
export const OPTIONS_OFFSET = BOOTP_HEADER_LENGTH + MAGIC_COOKIE.length;
/** RFC 2131 §2: a client must accept 576-byte messages; we refuse anything larger than one Ethernet MTU. */
export const MAX_MESSAGE_LENGTH = 1500 - 20 - 8;
/** BOOTP relays and old clients expect at least 300 bytes (RFC 1542 §2.1). */
export const MIN_ENCODED_LENGTH = 300;

export const SNAME_LENGTH = 64;
export const FILE_LENGTH = 128;
export const CHADDR_LENGTH = 16;

/** Flags field: the broadcast bit (RFC 2131 §2, Figure 2). */
export const FLAG_BROADCAST = 0x8000;

export const SERVER_PORT = 67;
export const CLIENT_PORT = 68;

export const DHCP_MESSAGE_TYPE = {
  DHCPDISCOVER: 1,
  DHCPOFFER: 2,
  DHCPREQUEST: 3,
  DHCPDECLINE: 4,
  DHCPACK: 5,
  DHCPNAK: 6,
  DHCPRELEASE: 7,
  DHCPINFORM: 8,
} as const;
export type DhcpMessageTypeName = keyof typeof DHCP_MESSAGE_TYPE;
export type DhcpMessageType = (typeof DHCP_MESSAGE_TYPE)[DhcpMessageTypeName];

export const OPTION = {
  PAD: 0,
  SUBNET_MASK: 1,
  ROUTER: 3,
  DOMAIN_NAME_SERVER: 6,
  HOST_NAME: 12,
  BROADCAST_ADDRESS: 28,
  REQUESTED_IP_ADDRESS: 50,
  IP_ADDRESS_LEASE_TIME: 51,
  OPTION_OVERLOAD: 52,
  DHCP_MESSAGE_TYPE: 53,
  SERVER_IDENTIFIER: 54,
  PARAMETER_REQUEST_LIST: 55,
  MESSAGE: 56,
  MAXIMUM_DHCP_MESSAGE_SIZE: 57,
  RENEWAL_TIME_VALUE: 58,
  REBINDING_TIME_VALUE: 59,
  VENDOR_CLASS_IDENTIFIER: 60,
  CLIENT_IDENTIFIER: 61,
  TFTP_SERVER_NAME: 66,
  USER_CLASS: 77,
  BOOTFILE_NAME: 67,
  CLIENT_SYSTEM_ARCHITECTURE: 93,
  CLIENT_NETWORK_INTERFACE_IDENTIFIER: 94,
  CLIENT_MACHINE_IDENTIFIER: 97,
  END: 255,
} as const;

/** RFC 4578 §2.1 processor architecture types (option 93), the ones TIPS boots differently. */
export const CLIENT_ARCH = {
  INTEL_X86PC: 0,
  EFI_IA32: 6,
  EFI_BC: 7,
  EFI_X86_64: 9,
} as const;

/** Option 77 (user class) value iPXE sends: the client already runs iPXE and wants its script. */
export const IPXE_USER_CLASS = 'iPXE';

/** Option 60 prefix that marks a PXE client (PXE 2.1 spec, RFC 4578 §2). */
export const PXE_VENDOR_CLASS_PREFIX = 'PXEClient';
