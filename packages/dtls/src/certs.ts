/** Certificate chain checks for the RFC 7925 certificate mode: P-256 leaf, chain to one of the trust anchors. */
import { X509Certificate } from 'node:crypto';
import { DtlsError } from './errors.ts';
import { equalBytes } from './wire.ts';

const MAX_DEPTH = 5;

function parse(der: Uint8Array): X509Certificate {
  try {
    return new X509Certificate(der);
  } catch {
    throw new DtlsError('bad_certificate', 'certificate is not DER X.509');
  }
}

function current(c: X509Certificate, now: Date): void {
  if (new Date(c.validFrom) > now || new Date(c.validTo) < now) {
    throw new DtlsError('bad_certificate', `certificate ${c.subject.replace(/\n/g, ', ')} is outside its validity period`);
  }
}

/** Throws DtlsError unless `chain` (DER, leaf first) ends in one of `anchors` by valid signatures. */
export function verifyChain(chain: Uint8Array[], anchors: Uint8Array[], now = new Date()): void {
  if (chain.length === 0) throw new DtlsError('bad_certificate', 'empty certificate chain');
  if (chain.length > MAX_DEPTH) throw new DtlsError('bad_certificate', `chain of ${chain.length} certificates, at most ${MAX_DEPTH}`);
  const certs = chain.map(parse);
  const roots = anchors.map((a) => ({ der: a, cert: parse(a) }));
  const leaf = certs[0] as X509Certificate;
  const details = leaf.publicKey.asymmetricKeyDetails;
  if (leaf.publicKey.asymmetricKeyType !== 'ec' || details?.namedCurve !== 'prime256v1') {
    throw new DtlsError('bad_certificate', 'leaf key is not ECDSA P-256 (RFC 7925 §4.4.2)');
  }
  for (let i = 0; i < certs.length; i++) {
    const c = certs[i] as X509Certificate;
    current(c, now);
    if (roots.some((r) => equalBytes(r.der, chain[i] as Uint8Array))) return;
    const anchor = roots.find((r) => c.checkIssued(r.cert) && c.verify(r.cert.publicKey));
    if (anchor) {
      current(anchor.cert, now);
      return;
    }
    const next = certs[i + 1];
    if (!next) break;
    if (!next.ca || !c.checkIssued(next) || !c.verify(next.publicKey)) {
      throw new DtlsError('bad_certificate', 'certificate chain is broken: a certificate is not signed by the next CA');
    }
  }
  throw new DtlsError('unknown_ca', 'certificate chain does not end in a trust anchor');
}
