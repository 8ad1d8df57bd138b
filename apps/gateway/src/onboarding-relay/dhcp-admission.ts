// Whether the DHCP server answers a MAC, given its interface row (issue 11, Z1 and T6). Without
// the onboarding relay a Blocked interface gets no lease (T6). With `--onboarding-relay`, an
// interface Blocked only because its MAC was unknown (`unknown_mac`: a device powered on before its
// owner imported its voucher) still gets one — otherwise its lease runs out while it is Blocked and
// it can never reach the relay again. The nftables rules let such a source reach the relay and
// nothing else (enforcer/nft.ts), and the relay admits exactly these (gateway.ts relayAdmission);
// an interface its owner blocked stays without a lease either way.

/** The parts of an interface row the decision reads (undefined: the MAC has no row yet). */
export interface AdmissionRow {
  state: string;
  reason: string | null;
}

export function dhcpAdmission(row: AdmissionRow | undefined, onboardingRelay: boolean): 'serve' | 'refuse' {
  if (row?.state !== 'blocked') return 'serve';
  return onboardingRelay && row.reason === 'unknown_mac' ? 'serve' : 'refuse';
}
