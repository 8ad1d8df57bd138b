/**
 * First power-on (issue 11, Z1), the device's side: find the owner through rendezvous (TO1), check
 * the owner is who the voucher says (TO2 step 1), prove possession of the device key (TO2 step 2).
 * The device trusts nothing it is told before it has checked it against what the factory gave it:
 * its credential's HMAC secret and manufacturer key hash make the voucher's header its own, the
 * chain makes the current owner, and only that owner's signatures (the redirect, the TO2 proof)
 * are accepted. Node 18, no dependency beyond the workspace's pure packages.
 */
import { createPublicKey, type KeyObject, randomBytes } from 'node:crypto';
import {
  credentialMatchesVoucher,
  type DeviceCredential,
  type DeviceFacts,
  type DeviceSetup,
  decodeVoucher,
  deviceFactsDigest,
  guidToString,
  makeSetupKey,
  openSetup,
  parseDeviceSetup,
  rendezvousUrls,
  sameBytes,
  type ProofSigner,
  signProof,
  signProofWith,
  toFdoPublicKey,
  verifyProof,
  verifyTo1d,
  verifyVoucherChain,
} from '@tips/onboarding';
import { CborTag, decodeCbor } from '@tips/suit';

export type OnboardingStep = 'rendezvous' | 'owner' | 'prove' | 'setup';

export class OnboardingError extends Error {
  constructor(
    readonly step: OnboardingStep,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'OnboardingError';
  }
}

export interface OnboardResult {
  guid: string;
  /** The rendezvous server that answered. */
  rendezvous: string;
  /** The owner's master the device onboarded with. */
  owner: string;
  /** The gateway's onboarding relay it went through, or null (direct). */
  relay: string | null;
  /** What the owner's master answered: `registered` (the Metal Object exists; EST is next). */
  status: string;
  /** What the owner sealed for this device: its metal, the EST credential, the agent settings. */
  setup: DeviceSetup;
}

export interface OnboardOptions {
  fetch?: Fetch;
  /** The device's clock, ms since the epoch (only the redirect's expiry depends on it). */
  now?: () => number;
  /** What the device reports: its interfaces (with their MACs), resources, purpose. */
  facts: DeviceFacts;
  /**
   * The device's TPM (tpm2 profiles): its identity goes with the hello; the evidence is made over the
   * master's challenge (credential activation), the owner's nonce and the PCRs the profile asks for.
   */
  tpm?: { identity: Uint8Array; evidence(challenge: Uint8Array, nonce: Uint8Array, pcrs: number[]): Promise<Uint8Array> };
  /**
   * The gateway's onboarding relay (`http://<router>:8071`), tried before the credential's
   * rendezvous addresses: a device nobody declared reaches nothing else through a TIPS gateway. When
   * TO1 went through it, TO2 does too (the relay forwards to the gateway's master). Nothing it
   * relays is trusted more than a direct answer: the same signatures are checked.
   */
  relay?: string;
}

type Fetch = typeof fetch;

async function post(fetchImpl: Fetch, base: string, path: string, body: unknown, step: OnboardingStep): Promise<Record<string, unknown>> {
  let res: Response;
  try {
    res = await fetchImpl(new URL(path, base), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(30_000) });
  } catch (e) {
    throw new OnboardingError(step, 'unreachable', `${base}: ${(e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message}`);
  }
  const json = (await res.json().catch(() => ({}))) as Record<string, unknown> & { error?: { code?: string; message?: string } };
  if (!res.ok) throw new OnboardingError(step, json.error?.code ?? `http_${res.status}`, `${base}${path}: ${json.error?.message ?? `HTTP ${res.status}`}`);
  return json;
}

const bytes = (v: unknown, what: string, step: OnboardingStep): Uint8Array => {
  if (typeof v !== 'string') throw new OnboardingError(step, 'bad_answer', `expected ${what} (base64)`);
  return new Uint8Array(Buffer.from(v, 'base64'));
};

/**
 * TO1 then TO2. `deviceKey` is the private key the factory made (software); the credential is
 * `device.cred` decoded; a key in a TPM comes as a `ProofSigner` (`tpmSigner`). `now` in ms since the epoch (the device's clock; only the redirect's
 * expiry depends on it).
 */
export async function onboard(credential: DeviceCredential, deviceKey: KeyObject | ProofSigner, opts: OnboardOptions): Promise<OnboardResult> {
  const signer = typeof (deviceKey as ProofSigner).sign === 'function' ? (deviceKey as ProofSigner) : undefined;
  const sign = (context: 'tips-to1-device' | 'tips-to2-device', fields: Uint8Array[]) => (signer ? signProofWith(signer, context, fields) : signProof(deviceKey as KeyObject, context, fields));
  const devicePublic = signer ? signer.publicKey : createPublicKey(deviceKey as KeyObject);
  const fetchImpl = opts.fetch ?? fetch;
  const now = opts.now ?? Date.now;
  const guid = guidToString(credential.guid);
  if (!credential.active) throw new OnboardingError('rendezvous', 'credential_inactive', 'the device credential is not active');

  // TO1: each rendezvous address from the factory, in order, until one knows this device.
  let to1d: Uint8Array | undefined;
  let rendezvous = '';
  let viaRelay = false;
  const failures: string[] = [];
  let relayCode: string | undefined;
  for (const rv of [...(opts.relay ? [opts.relay] : []), ...rendezvousUrls(credential.rendezvous)]) {
    try {
      const hello = await post(fetchImpl, rv, '/api/rendezvous/v1/hello', { guid }, 'rendezvous');
      const nonce = bytes(hello.nonce, 'nonce', 'rendezvous');
      const proof = sign('tips-to1-device', [credential.guid, nonce]);
      const answer = await post(fetchImpl, rv, '/api/rendezvous/v1/prove', { guid, proof: Buffer.from(proof).toString('base64') }, 'rendezvous');
      to1d = bytes(answer.to1d, 'to1d', 'rendezvous');
      rendezvous = rv;
      viaRelay = rv === opts.relay;
      break;
    } catch (e) {
      if (!(e instanceof OnboardingError)) throw e;
      if (rv === opts.relay) relayCode = e.code;
      failures.push(`${e.code}: ${e.message}`);
    }
  }
  // A gateway's relay forwards only to that gateway's own master (its owner's). When that master
  // does not know the device and the device's own rendezvous addresses are out of reach, say why.
  if (!to1d && relayCode === 'guid_unknown') {
    throw new OnboardingError(
      'rendezvous',
      'relay_owner_unknown',
      `the gateway's onboarding relay (${opts.relay}) forwards only to its own owner's master, and that master holds no voucher registration for this device: it belongs to another owner, or its owner has not imported its voucher yet. A gateway onboards only its owner's devices — connect this device to a network of its owner, or have its voucher imported by the owner of this gateway (${failures.join('; ')})`,
    );
  }
  if (!to1d) throw new OnboardingError('rendezvous', 'rendezvous_failed', `no rendezvous server knows this device: ${failures.join('; ')}`);

  // The redirect is not trusted yet (we do not know the owner key before we hold the voucher): we
  // read the address from it, and check its signature once the voucher names the owner.
  const addresses = peekAddresses(to1d);
  const owner = addresses[0]!;
  const ownerBase = viaRelay ? opts.relay! : owner;

  // TO2 step 1: the owner shows the voucher and proves it holds the key the chain ends at.
  const deviceNonce = new Uint8Array(randomBytes(16));
  const hello = await post(fetchImpl, ownerBase, '/api/onboarding/v1/hello', { guid, nonce: Buffer.from(deviceNonce).toString('base64'), device: opts.facts, ...(opts.tpm ? { tpm: Buffer.from(opts.tpm.identity).toString('base64') } : {}) }, 'owner');
  const voucher = decodeVoucherOr(bytes(hello.voucher, 'voucher', 'owner'));
  if (!credentialMatchesVoucher(credential, voucher)) throw new OnboardingError('owner', 'voucher_not_ours', 'the voucher shown is not this device\'s (header HMAC, GUID or manufacturer key differ)');
  let chain: ReturnType<typeof verifyVoucherChain>;
  try {
    chain = verifyVoucherChain(voucher);
  } catch (e) {
    throw new OnboardingError('owner', 'voucher_invalid', (e as Error).message);
  }
  if (!sameBytes(chain.deviceKey.body, toFdoPublicKey(devicePublic).body)) throw new OnboardingError('owner', 'voucher_not_ours', 'the voucher binds another device key');
  try {
    verifyTo1d(to1d, chain.currentOwner, Math.floor(now() / 1000));
    const [g, dn, on] = verifyProof(bytes(hello.ownerProof, 'ownerProof', 'owner'), chain.currentOwner, 'tips-to2-owner');
    const ownerNonce = bytes(hello.nonce, 'nonce', 'owner');
    if (!(g instanceof Uint8Array) || !sameBytes(g, credential.guid) || !(dn instanceof Uint8Array) || !sameBytes(dn, deviceNonce) || !(on instanceof Uint8Array) || !sameBytes(on, ownerNonce)) {
      throw new OnboardingError('owner', 'owner_proof_invalid', 'the owner\'s proof is not over this device and these nonces');
    }
    // TO2 step 2: the device proves possession of its key over the owner's nonce, binding the facts
    // it reported and a fresh key the owner encrypts the setup to.
    const setupKey = makeSetupKey();
    const proof = sign('tips-to2-device', [credential.guid, ownerNonce, deviceFactsDigest(opts.facts), setupKey.publicRaw]);
    const attestation = hello.attestation as { verifier?: string; pcrs?: number[]; challenge?: string } | undefined;
    let evidence: Uint8Array | undefined;
    if (attestation?.verifier === 'tpm2') {
      if (!opts.tpm) throw new OnboardingError('prove', 'tpm_required', 'the owner\'s profile for this device asks for TPM 2.0 evidence, and this device has no TPM configured (--tcti)');
      evidence = await opts.tpm.evidence(bytes(attestation.challenge, 'attestation.challenge', 'owner'), ownerNonce, attestation.pcrs ?? []);
    }
    const body = { guid, nonce: Buffer.from(ownerNonce).toString('base64'), proof: Buffer.from(proof).toString('base64'), ...(evidence ? { evidence: Buffer.from(evidence).toString('base64') } : {}) };
    const done = await post(fetchImpl, ownerBase, '/api/onboarding/v1/prove', body, 'prove');
    let setup: DeviceSetup;
    try {
      setup = parseDeviceSetup(openSetup(bytes(done.setup, 'setup', 'setup'), chain.currentOwner, credential.guid, ownerNonce, setupKey));
    } catch (e) {
      throw new OnboardingError('setup', 'setup_invalid', `the owner's setup is not sealed for this device by its owner: ${(e as Error).message}`);
    }
    return { guid, rendezvous, owner, relay: viaRelay ? opts.relay! : null, status: String(done.status), setup };
  } catch (e) {
    if (e instanceof OnboardingError) throw e;
    throw new OnboardingError('owner', 'owner_proof_invalid', `the redirect or the owner's proof is not signed by the voucher's owner: ${(e as Error).message}`);
  }
}

function decodeVoucherOr(b: Uint8Array) {
  try {
    return decodeVoucher(b);
  } catch (e) {
    throw new OnboardingError('owner', 'voucher_invalid', (e as Error).message);
  }
}

/** The addresses of a to1d, read without trusting them (verified after TO2 step 1). */
function peekAddresses(to1d: Uint8Array): string[] {
  const payload = to1dPayload(to1d);
  const addresses = Array.isArray(payload) ? payload[2] : undefined;
  if (!Array.isArray(addresses) || addresses.length === 0 || !addresses.every((a) => typeof a === 'string' && /^https?:\/\//.test(a))) {
    throw new OnboardingError('rendezvous', 'to1d_invalid', 'the redirect names no http(s) address');
  }
  return addresses as string[];
}


/** The COSE_Sign1's payload, decoded: [context, guid, addresses, expiresAt]; undefined if it is not one. */
function to1dPayload(to1d: Uint8Array): unknown {
  try {
    const outer = decodeCbor(to1d);
    const body = outer instanceof CborTag ? outer.value : outer;
    if (!Array.isArray(body) || !(body[2] instanceof Uint8Array)) return undefined;
    return decodeCbor(body[2]);
  } catch {
    return undefined;
  }
}
