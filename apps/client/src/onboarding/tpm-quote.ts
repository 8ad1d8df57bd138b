/**
 * The device's side of the tpm2 verifier (Z2), with Debian's tpm2-tools. Two rounds:
 *   1. `tpmIdentity` — the EK (TCG default RSA template, re-derived each time) and the Attestation
 *      Key (restricted ECDSA P-256 under the EK, made once and kept at a persistent handle); the
 *      master answers with a credential wrapped for them (TPM2_MakeCredential).
 *   2. `makeTpmEvidence` — TPM2_ActivateCredential unwraps it (only this TPM, with this AK loaded,
 *      can), TPM2_Quote over the nonce and the PCRs asked for, TPM2_Certify of the device key by the
 *      AK. Everything goes back as one CBOR map (the verifier's `Tpm2Evidence`).
 * Without a resource manager (swtpm's socket, /dev/tpm0) every tool leaves its objects and sessions
 * loaded and a TPM has few slots: each step flushes transient objects and sessions, as the factory does.
 */
import { spawnSync } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CborValue, encodeCbor } from '@tips/suit';

export const DEFAULT_AK_HANDLE = '0x81018000';
/** TPM_RH_ENDORSEMENT: the EK's policy is PolicySecret(endorsement hierarchy). */
const TPM_RH_ENDORSEMENT = '0x4000000B';

export class TpmToolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TpmToolError';
  }
}

function session(tcti: string) {
  const work = mkdtempSync(join(tmpdir(), 'tips-tpm-quote-'));
  const env = { ...process.env, TPM2TOOLS_TCTI: tcti };
  const exec = (args: string[]) => spawnSync(args[0]!, args.slice(1), { cwd: work, env, encoding: 'utf8', timeout: 60_000 });
  const flush = () => {
    exec(['tpm2_flushcontext', '-t']);
    exec(['tpm2_flushcontext', '-s']);
  };
  /** `keep`: leave what the tool loaded in place (a policy session the next tool uses). */
  const run = (args: string[], keep = false): string => {
    const r = exec(args);
    if (!keep || r.status !== 0) flush();
    if (r.error) throw new TpmToolError(`${args[0]}: ${(r.error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not installed (Debian package tpm2-tools)' : r.error.message}`);
    if (r.status !== 0) throw new TpmToolError(`${args[0]} (TCTI ${tcti}): ${r.stderr.split('\n').find((l) => l.startsWith('ERROR')) ?? r.stderr.trim().split('\n')[0] ?? `exit ${r.status}`}`);
    return r.stdout;
  };
  const file = (name: string) => new Uint8Array(readFileSync(join(work, name)));
  return { work, run, file, close: () => rmSync(work, { recursive: true, force: true }) };
}

const checkHandle = (h: string, what: string) => {
  if (!/^0x81[0-9a-fA-F]{6}$/.test(h)) throw new TpmToolError(`${what}: expected a persistent handle 0x81xxxxxx, came "${h}"`);
};

function readEk(s: ReturnType<typeof session>): Uint8Array {
  s.run(['tpm2_createek', '-c', 'ek.ctx', '-G', 'rsa', '-u', 'ek.pem', '-f', 'pem']);
  return new Uint8Array(createPublicKey(readFileSync(join(s.work, 'ek.pem'))).export({ type: 'spki', format: 'der' }));
}

/** Round one: `{ ek: SPKI DER, ak: TPM2B_PUBLIC }` as CBOR; makes the AK at `akHandle` if the TPM has none there. */
export async function tpmIdentity(opts: { tcti: string; akHandle?: string }): Promise<Uint8Array> {
  const akHandle = opts.akHandle ?? DEFAULT_AK_HANDLE;
  checkHandle(akHandle, 'akHandle');
  const s = session(opts.tcti);
  try {
    const ek = readEk(s);
    if (!s.run(['tpm2_getcap', 'handles-persistent']).toLowerCase().includes(akHandle.toLowerCase())) {
      s.run(['tpm2_createak', '-C', 'ek.ctx', '-c', 'ak.ctx', '-G', 'ecc', '-g', 'sha256', '-s', 'ecdsa', '-u', 'ak.new', '-f', 'tss', '-n', 'ak.name', '-r', 'ak.priv']);
      s.run(['tpm2_evictcontrol', '-Q', '-C', 'o', '-c', 'ak.ctx', akHandle]);
    }
    s.run(['tpm2_readpublic', '-Q', '-c', akHandle, '-f', 'tss', '-o', 'ak.pub']);
    return encodeCbor(new Map<CborValue, CborValue>([['ek', ek], ['ak', s.file('ak.pub')]]));
  } finally {
    s.close();
  }
}

export interface TpmEvidenceInput {
  tcti: string;
  /** The master's answer to round one (tpm2-tools' credential file). */
  challenge: Uint8Array;
  /** The onboarding's nonce: the quote's qualifying data. */
  nonce: Uint8Array;
  /** PCR indices (SHA-256 bank) the bootstrapping profile asks for. */
  pcrs: number[];
  /** Persistent handle of the device key the voucher binds (`device.tpm`'s `tpm2.handle`). */
  deviceHandle: string;
  akHandle?: string;
}

/** Round two: the CBOR evidence the tpm2 verifier checks. */
export async function makeTpmEvidence(input: TpmEvidenceInput): Promise<Uint8Array> {
  const akHandle = input.akHandle ?? DEFAULT_AK_HANDLE;
  checkHandle(akHandle, 'akHandle');
  checkHandle(input.deviceHandle, 'deviceHandle');
  const pcrs = [...new Set(input.pcrs)].sort((a, b) => a - b);
  if (pcrs.length === 0 || pcrs.some((i) => !Number.isInteger(i) || i < 0 || i > 23)) throw new TpmToolError('pcrs: expected PCR indices 0–23, at least one');
  const s = session(input.tcti);
  try {
    const ek = readEk(s);
    writeFileSync(join(s.work, 'credential.in'), input.challenge);
    // The policy session must survive until ActivateCredential uses it: no flush in between.
    s.run(['tpm2_startauthsession', '--policy-session', '-S', 'session.ctx'], true);
    s.run(['tpm2_policysecret', '-S', 'session.ctx', '-c', TPM_RH_ENDORSEMENT], true);
    s.run(['tpm2_activatecredential', '-Q', '-c', akHandle, '-C', 'ek.ctx', '-i', 'credential.in', '-o', 'credential.out', '-P', 'session:session.ctx']);
    s.run(['tpm2_quote', '-Q', '-c', akHandle, '-l', `sha256:${pcrs.join(',')}`, '-q', Buffer.from(input.nonce).toString('hex'), '-m', 'quote.msg', '-s', 'quote.sig', '-o', 'pcrs.bin', '-F', 'values', '-g', 'sha256']);
    s.run(['tpm2_certify', '-Q', '-C', akHandle, '-c', input.deviceHandle, '-g', 'sha256', '-o', 'certify.msg', '-s', 'certify.sig']);
    s.run(['tpm2_readpublic', '-Q', '-c', akHandle, '-f', 'tss', '-o', 'ak.pub']);
    s.run(['tpm2_readpublic', '-Q', '-c', input.deviceHandle, '-f', 'tss', '-o', 'device.pub']);
    const values = s.file('pcrs.bin');
    if (values.length !== pcrs.length * 32) throw new TpmToolError(`tpm2_quote: ${values.length} bytes of PCR values for ${pcrs.length} PCRs`);
    return encodeCbor(
      new Map<CborValue, CborValue>([
        ['ek', ek],
        ['ak', s.file('ak.pub')],
        ['credential', s.file('credential.out')],
        ['akCertify', new Map<CborValue, CborValue>([['attest', s.file('certify.msg')], ['signature', s.file('certify.sig')]])],
        ['device', s.file('device.pub')],
        ['quote', s.file('quote.msg')],
        ['signature', s.file('quote.sig')],
        ['pcrs', new Map<CborValue, CborValue>(pcrs.map((i, n) => [i, values.slice(n * 32, n * 32 + 32)]))],
      ]),
    );
  } finally {
    s.close();
  }
}
