import { spawnSync } from 'node:child_process';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliError, EXIT } from '../errors.ts';

/** Where a device's key lives when it is inside a TPM 2.0: what `device.tpm` records for the device. */
export interface TpmKeyRecord {
  tpm2: { handle: string; alg: 'ecdsa-p256-sha256' };
  publicKey: string;
}

const HANDLE = /^0x81[0-9a-fA-F]{6}$/;

/**
 * Makes the device key inside a TPM 2.0 with tpm2-tools (as the factory's programming station
 * would): an ECC P-256 signing key under the owner-hierarchy primary, never exportable
 * (fixedtpm|fixedparent|sensitivedataorigin), persisted at `handle`. Without a resource manager
 * (a bare swtpm or /dev/tpm0) every tool leaves its transient objects loaded, so each step is
 * followed by a flush. Returns the public key; the private key never leaves the TPM.
 */
export function createTpmDeviceKey(tcti: string, handle: string): KeyObject {
  if (!HANDLE.test(handle)) throw new CliError('bad_handle', `--tpm-handle must be a persistent handle 0x81xxxxxx, got "${handle}"`, EXIT.usage, '--tpm-handle');
  const work = mkdtempSync(join(tmpdir(), 'tips-factory-tpm-'));
  const env = { ...process.env, TPM2TOOLS_TCTI: tcti };
  const run = (args: string[]): string => {
    const r = spawnSync(args[0]!, args.slice(1), { cwd: work, env, encoding: 'utf8', timeout: 60_000 });
    if (r.error) throw new CliError('tpm_failed', `${args[0]}: ${(r.error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not installed (Debian package tpm2-tools)' : r.error.message}`, EXIT.failure);
    if (r.status !== 0) {
      const why = r.stderr.split('\n').find((l) => l.startsWith('ERROR')) ?? r.stderr.trim().split('\n')[0] ?? `exit ${r.status}`;
      throw new CliError('tpm_failed', `${args[0]} (TCTI ${tcti}): ${why}`, EXIT.failure);
    }
    return r.stdout;
  };
  const flush = () => {
    run(['tpm2_flushcontext', '-t']);
    run(['tpm2_flushcontext', '-s']);
  };
  try {
    const persistent = run(['tpm2_getcap', 'handles-persistent']).toLowerCase();
    if (persistent.includes(handle.toLowerCase())) {
      throw new CliError('tpm_handle_in_use', `the TPM already holds a persistent object at ${handle}: this device has a key; refusing to replace it`, EXIT.conflict, '--tpm-handle');
    }
    run(['tpm2_createprimary', '-Q', '-C', 'o', '-g', 'sha256', '-G', 'ecc256', '-c', 'primary.ctx']);
    flush();
    run(['tpm2_create', '-Q', '-C', 'primary.ctx', '-G', 'ecc256:ecdsa-sha256', '-a', 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign', '-u', 'key.pub', '-r', 'key.priv']);
    flush();
    run(['tpm2_load', '-Q', '-C', 'primary.ctx', '-u', 'key.pub', '-r', 'key.priv', '-c', 'key.ctx']);
    flush();
    run(['tpm2_evictcontrol', '-Q', '-C', 'o', '-c', 'key.ctx', handle]);
    flush();
    run(['tpm2_readpublic', '-Q', '-c', handle, '-f', 'pem', '-o', 'device.pem']);
    flush();
    return createPublicKey(readFileSync(join(work, 'device.pem')));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
