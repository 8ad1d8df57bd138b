/**
 * The installer's signed report (A4): a CBOR map with text keys (deterministic order), carried
 * in a COSE_Sign1 (EdDSA) made with the Ed25519 key this installer generated and bound to the job.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync, openSync, fsyncSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { ALG_EDDSA, type CborValue, canonicalMap, coseSign1Sign, encodeCbor, HEADER_ALG } from '@tips/suit';
import type { ReportCode } from './errors.ts';

export interface InstallReport {
  jobId: string;
  result: 'installed' | 'failed';
  reason: ReportCode | null;
  detail: string | null;
  glazeSha256: string;
  bytesWritten: number;
  disk: string;
  at: string;
}

export function encodeReportPayload(r: InstallReport): Uint8Array {
  const entries: [CborValue, CborValue][] = [
    ['jobId', r.jobId],
    ['result', r.result],
    ['reason', r.reason],
    ['detail', r.detail],
    ['glazeSha256', r.glazeSha256],
    ['bytesWritten', r.bytesWritten],
    ['disk', r.disk],
    ['at', r.at],
  ];
  return encodeCbor(canonicalMap(entries));
}

export function signReport(r: InstallReport, privateKey: KeyObject): Uint8Array {
  return coseSign1Sign({ protectedHeaders: new Map([[HEADER_ALG, ALG_EDDSA]]), unprotectedHeaders: new Map(), payload: encodeReportPayload(r) }, { privateKey });
}

export interface InstallerKey {
  privateKey: KeyObject;
  /** base64url of the raw 32-byte Ed25519 public key (A3 `installerKey`). */
  publicRaw: string;
}

function toInstallerKey(privateKey: KeyObject): InstallerKey {
  const jwk = createPublicKey(privateKey).export({ format: 'jwk' });
  return { privateKey, publicRaw: String(jwk.x) };
}

/**
 * The installer's key: kept in the state dir (RAM in the initramfs) so a restarted installer of
 * the same boot is still the one the job is bound to. Written temp + fsync + rename, 0600.
 */
export function loadOrCreateKey(stateDir: string): InstallerKey {
  const file = join(stateDir, 'installer-key.pem');
  try {
    return toInstallerKey(createPrivateKey(readFileSync(file, 'utf8')));
  } catch {
    // none yet (or unreadable): make a new one
  }
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const { privateKey } = generateKeyPairSync('ed25519');
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  const fd = openSync(tmp, 'r');
  fsyncSync(fd);
  closeSync(fd);
  renameSync(tmp, file);
  return toInstallerKey(privateKey);
}
