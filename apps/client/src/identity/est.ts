/**
 * EST (RFC 7030) towards the master: simpleenroll with the one-use enrollment secret (HTTP Basic),
 * simplereenroll with the current certificate (mTLS). The key is ECDSA P-256 — the only key type
 * the master's CA accepts in a CSR (@tips/trust verifyCsr) — made with WebCrypto, and the CSR names
 * the metal as the master expects: CN=<TIPS ID> and URI SAN urn:tips:metal:<TIPS ID>.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { generateKeyPair, identityUri, parseCertsOnlyPkcs7, privateKeyToPem, x509 } from '@tips/trust';
import { ClientError } from '../errors.ts';
import { errorOf, send, type TlsMaterial } from '../http/https.ts';

export interface CsrAndKey {
  keyPem: string;
  csrDer: Uint8Array;
}

/** A fresh P-256 key and a PKCS#10 signed with it, naming `tipsId`. */
export async function makeKeyAndCsr(tipsId: string): Promise<CsrAndKey> {
  const keys = await generateKeyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${tipsId}`,
    keys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: identityUri({ kind: 'metal', id: tipsId }) }])],
  });
  return { keyPem: await privateKeyToPem(keys.privateKey), csrDer: new Uint8Array(csr.rawData) };
}

export interface EstResult {
  /** The metal certificate first, then whatever else the answer carried. */
  certPem: string;
}

function spki(k: KeyObject): Buffer {
  return (k.type === 'private' ? createPublicKey(k) : k).export({ type: 'spki', format: 'der' });
}

/** Parses the base64 certs-only answer and checks it certifies our key for our identity. */
export function parseEstAnswer(body: Buffer, keyPem: string, tipsId: string): EstResult {
  const text = body.toString('ascii');
  if (!/^[A-Za-z0-9+/=\r\n]+$/.test(text)) throw new ClientError('est_bad_response', 'EST answer: expected base64 of a certs-only PKCS#7');
  let certs: x509.X509Certificate[];
  try {
    certs = parseCertsOnlyPkcs7(new Uint8Array(Buffer.from(text, 'base64')));
  } catch (e) {
    throw new ClientError('est_bad_response', `EST answer: ${(e as Error).message}`);
  }
  const mine = spki(createPublicKey(keyPem));
  const leaf = certs.find((c) => Buffer.from(c.publicKey.rawData).equals(mine));
  if (!leaf) throw new ClientError('est_bad_response', 'EST answer: no certificate for the key this metal made');
  const san = leaf.getExtension(x509.SubjectAlternativeNameExtension);
  const uris = (san?.names.toJSON() ?? []).filter((n) => n.type === 'url').map((n) => n.value);
  if (!uris.includes(identityUri({ kind: 'metal', id: tipsId }))) throw new ClientError('est_bad_response', `EST answer: the certificate does not name urn:tips:metal:${tipsId}`);
  const ordered = [leaf, ...certs.filter((c) => c !== leaf)];
  return { certPem: ordered.map((c) => `${c.toString('pem')}\n`).join('') };
}

async function est(url: string, csrDer: Uint8Array, tls: TlsMaterial, headers: Record<string, string>): Promise<Buffer> {
  const res = await send({
    url,
    method: 'POST',
    headers: { 'content-type': 'application/pkcs10', accept: 'application/pkcs7-mime', ...headers },
    body: `${Buffer.from(csrDer).toString('base64')}\n`,
    tls,
  });
  if (res.status !== 200) {
    const e = errorOf(res);
    const code = res.status === 401 || res.status === 403 ? 'est_refused' : 'est_bad_response';
    throw new ClientError(code, `EST ${new URL(url).pathname} → ${res.status}${e ? ` ${e.code}: ${e.message}` : ''}`, e?.code);
  }
  return res.body;
}

/** simpleenroll with HTTP Basic secretId:secret. */
export async function simpleEnroll(estUrl: string, caPem: string, secret: { secretId: string; secret: string }, csr: CsrAndKey, tipsId: string): Promise<EstResult> {
  const basic = Buffer.from(`${secret.secretId}:${secret.secret}`, 'utf8').toString('base64');
  const body = await est(`${estUrl}/simpleenroll`, csr.csrDer, { ca: caPem }, { authorization: `Basic ${basic}` });
  return parseEstAnswer(body, csr.keyPem, tipsId);
}

/** simplereenroll authenticated by the current certificate (mTLS). */
export async function simpleReenroll(estUrl: string, caPem: string, current: { certPem: string; keyPem: string }, csr: CsrAndKey, tipsId: string): Promise<EstResult> {
  const body = await est(`${estUrl}/simplereenroll`, csr.csrDer, { ca: caPem, cert: current.certPem, key: current.keyPem }, {});
  return parseEstAnswer(body, csr.keyPem, tipsId);
}
