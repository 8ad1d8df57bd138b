// Keeps the gateway's TLS client certificate fresh: renewed once past half its lifetime (a week by
// default, so after about 3.5 days), checked at start and then every hour.
import type { MasterClient } from './client.ts';
import { renewalDue, saveCertificate } from './identity.ts';

export const RENEWAL_CHECK_MS = 60 * 60 * 1000;

export type RenewalOutcome = { renewed: false; reason: 'no_certificate' | 'not_due'; notAfter?: string } | { renewed: true; notAfter: string };

/** Renews when due, and stores the new certificate and CA chain durably before using them. */
export async function renewIfDue(client: MasterClient, dataDir: string, key: Parameters<typeof saveCertificate>[3], now: Date): Promise<RenewalOutcome> {
  const current = client.certificatePem;
  if (!current) return { renewed: false, reason: 'no_certificate' };
  const { due, notAfter } = renewalDue(current, now);
  if (!due) return { renewed: false, reason: 'not_due', notAfter: notAfter.toISOString() };
  const issued = await client.renewCertificate();
  saveCertificate(dataDir, issued.certificate, issued.caChain, key);
  return { renewed: true, notAfter: issued.notAfter };
}
