/**
 * The device key inside a TPM 2.0 (made by `tips factory device create --tpm`; `device.tpm` names
 * its persistent handle): signing goes through tpm2-tools, the private key never leaves the TPM.
 */
import { spawnSync } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ProofSigner } from '@tips/onboarding';

export interface TpmKeyRecord {
  tpm2: { handle: string; alg: string };
  publicKey: string;
}

/** r‖s (32 bytes each) from a DER ECDSA-Sig-Value, which is what `tpm2_sign -f plain` writes for ECDSA. */
export function derToP1363(der: Uint8Array, size = 32): Uint8Array {
  const fail = (): never => {
    throw new Error('tpm2_sign: expected a DER ECDSA signature');
  };
  let at = 0;
  const byte = () => (at < der.length ? der[at++]! : fail());
  if (byte() !== 0x30) fail();
  let len = byte();
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = (len << 8) | byte();
  }
  if (at + len !== der.length) fail();
  const out = new Uint8Array(size * 2);
  for (const half of [0, 1]) {
    if (byte() !== 0x02) fail();
    const n = byte();
    if (n === 0 || n > size + 1 || at + n > der.length) fail();
    let v = der.subarray(at, at + n);
    at += n;
    while (v.length > size && v[0] === 0) v = v.subarray(1);
    if (v.length > size) fail();
    out.set(v, half * size + (size - v.length));
  }
  if (at !== der.length) fail();
  return out;
}

/** A ProofSigner over the TPM key `record` names, reached through `tcti` (e.g. device:/dev/tpmrm0). */
export function tpmSigner(record: TpmKeyRecord, tcti: string): ProofSigner {
  if (!/^0x81[0-9a-fA-F]{6}$/.test(record.tpm2.handle)) throw new Error(`device.tpm: expected a persistent handle, came "${record.tpm2.handle}"`);
  const env = { ...process.env, TPM2TOOLS_TCTI: tcti };
  return {
    publicKey: createPublicKey(record.publicKey),
    sign(toBeSigned: Uint8Array): Uint8Array {
      const work = mkdtempSync(join(tmpdir(), 'tips-tpm-sign-'));
      try {
        writeFileSync(join(work, 'tbs'), toBeSigned);
        const r = spawnSync('tpm2_sign', ['-c', record.tpm2.handle, '-g', 'sha256', '-s', 'ecdsa', '-f', 'plain', '-o', 'sig', 'tbs'], { cwd: work, env, encoding: 'utf8', timeout: 30_000 });
        if (r.status !== 0) throw new Error(`tpm2_sign (TCTI ${tcti}): ${r.error?.message ?? r.stderr.split('\n').find((l) => l.startsWith('ERROR')) ?? `exit ${r.status}`}`);
        // Without a resource manager the session tpm2_sign opened stays loaded: flush it.
        spawnSync('tpm2_flushcontext', ['-s'], { env, timeout: 30_000 });
        return derToP1363(new Uint8Array(readFileSync(join(work, 'sig'))));
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    },
  };
}
