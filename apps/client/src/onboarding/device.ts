/**
 * `tips-client onboard` (issue 11, Z1): from the factory's device credential to an enrolled metal.
 * The device reports what it is (interfaces with their MACs as the kernel knows them, memory,
 * storage, architecture, purpose), runs TO1/TO2 (onboard.ts), writes what the owner sealed for it
 * — ca.pem, enrollment.json (0600), then config.json last, each temp + fsync + rename — and enrolls
 * over EST like any metal. Once config.json exists the device is no longer onboarding: a later run
 * only enrolls (if it still has to), so a power cut at any point resumes without asking the owner
 * again (who would refuse: the voucher is spent once the metal enrolled).
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statfsSync } from 'node:fs';
import { connect } from 'node:net';
import { arch as osArch, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import {
  type DeviceCredential,
  type DeviceFacts,
  type DeviceSetup,
  decodeDeviceCredential,
  ONBOARDING_RELAY_PORT,
  ONBOARDING_RELAY_PROBE,
  type ProofSigner,
  type ReportedInterface,
  rendezvousFromUrls,
} from '@tips/onboarding';
import type { Logger } from 'pino';
import { ClientError } from '../errors.ts';
import { writeFileDurably, writeJsonDurably } from '../state/files.ts';
import { OnboardingError, onboard } from './onboard.ts';
import { makeTpmEvidence, tpmIdentity } from './tpm-quote.ts';
import { type TpmKeyRecord, tpmSigner } from './tpm-signer.ts';

const SYS_NET = '/sys/class/net';

function readSys(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** One interface as the kernel knows it; the first named is the one the device boots from. */
export function reportedInterface(name: string, pxe: boolean, sys = SYS_NET): ReportedInterface {
  const mac = readSys(join(sys, name, 'address'));
  if (!mac || !/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(mac) || mac === '00:00:00:00:00:00') throw new ClientError('config_invalid', `--interface ${name}: the kernel knows no Ethernet MAC for it (${join(sys, name, 'address')})`);
  const type = existsSync(join(sys, name, 'wireless')) ? 'wifi' : readSys(join(sys, name, 'type')) === '1' ? 'ethernet' : 'other';
  return { name, mac, type, pxe };
}

/** The device's interfaces: those named (in order), else every one with a MAC but loopback. */
export function interfacesOf(names: string[], sys = SYS_NET): ReportedInterface[] {
  const list = names.length > 0 ? names : readdirSync(sys).filter((n) => n !== 'lo').sort();
  const out = list.flatMap((n, i) => {
    try {
      return [reportedInterface(n, i === 0, sys)];
    } catch (e) {
      if (names.length > 0) throw e;
      return [];
    }
  });
  if (out.length === 0) throw new ClientError('config_invalid', 'no network interface with a MAC to report');
  out[0]!.pxe = true;
  return out.slice(0, 16);
}

const ARCH: Record<string, string> = { x64: 'x86_64', arm64: 'aarch64', arm: 'armv7l', ia32: 'i686', riscv64: 'riscv64' };

export function deviceFacts(o: { interfaces: string[]; purpose?: string; storagePath: string }): DeviceFacts {
  let storageMb: number | undefined;
  try {
    const s = statfsSync(o.storagePath);
    storageMb = Math.floor((s.blocks * s.bsize) / 2 ** 20);
  } catch {
    storageMb = undefined;
  }
  return {
    interfaces: interfacesOf(o.interfaces),
    ramMb: Math.floor(totalmem() / 2 ** 20),
    ...(storageMb === undefined ? {} : { storageMb }),
    arch: ARCH[osArch()] ?? osArch(),
    ...(o.purpose ? { purpose: o.purpose } : {}),
  };
}

/** The device key: `device.key` (PKCS#8 PEM) or `device.tpm` (a TPM key record, with a TCTI). */
export function loadDeviceKey(file: string, tcti: string | undefined): KeyObject | ProofSigner {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ClientError('config_invalid', `--device-key: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (text.trimStart().startsWith('{')) {
    if (!tcti) throw new ClientError('config_invalid', `--device-key ${file} is a TPM key: give --tcti (e.g. device:/dev/tpmrm0)`);
    return tpmSigner(JSON.parse(text), tcti);
  }
  try {
    return createPrivateKey(text);
  } catch {
    throw new ClientError('config_invalid', `--device-key ${file}: not a PEM private key`);
  }
}

export function loadCredential(file: string): DeviceCredential {
  try {
    return decodeDeviceCredential(readFileSync(file));
  } catch (e) {
    throw new ClientError('config_invalid', `--device-credential ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** The key file beside the credential: device.key, else device.tpm. */
export function defaultKeyFile(credentialFile: string): string {
  const dir = dirname(credentialFile);
  return existsSync(join(dir, 'device.key')) ? join(dir, 'device.key') : join(dir, 'device.tpm');
}

/** Writes the sealed setup as the files contract B names (config.json last: its presence means "onboarded"). */
export function writeSetup(setup: DeviceSetup, configFile: string, stateDir: string): void {
  const etc = dirname(configFile);
  const caFile = join(etc, 'ca.pem');
  const enrollmentFile = join(etc, 'enrollment.json');
  writeFileDurably(caFile, setup.caPem, 0o644);
  writeJsonDurably(enrollmentFile, { secretId: setup.enrollment.secretId, secret: setup.enrollment.secret }, 0o600);
  writeJsonDurably(configFile, {
    masterUrl: setup.masterUrl,
    estUrl: setup.estUrl,
    caFile,
    tipsId: setup.tipsId,
    metalId: setup.metalId,
    enrollmentFile,
    stateDir,
    vendorId: setup.agent.vendorId ?? null,
    classId: setup.agent.classId ?? null,
    managedPaths: setup.agent.managedPaths ?? [],
    onboarding: { profile: setup.profile, phase1Glaze: setup.phase1Glaze, protocols: setup.protocols, pollIntervalSeconds: setup.agent.pollIntervalSeconds ?? null, push: setup.agent.push ?? null },
  });
}

/**
 * The default router of `iface` (any interface when undefined) from the kernel's routing table:
 * what the DHCP lease named in option 3 — on a TIPS LAN, the gateway's own LAN address.
 */
export function defaultRouter(iface: string | undefined, routeFile = '/proc/net/route'): string | undefined {
  let text: string;
  try {
    text = readFileSync(routeFile, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n').slice(1)) {
    const [name, destination, gateway, , , , , mask] = line.trim().split(/\s+/);
    if (!name || (iface !== undefined && name !== iface) || destination !== '00000000' || mask !== '00000000' || !gateway || !/^[0-9A-Fa-f]{8}$/.test(gateway) || gateway === '00000000') continue;
    // Little-endian hex, as the kernel prints it.
    const n = Number.parseInt(gateway, 16);
    return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24].join('.');
  }
  return undefined;
}

/**
 * The gateway's onboarding relay, if the router runs one: it answers the probe at the well-known
 * port. No router, nothing listening (refused), another answer: none, at once. A probe that times
 * out is tried again (a busy gateway, a device booting with many others), three times 5 s at most.
 */
export async function discoverRelay(router: string | undefined, fetchImpl: typeof fetch = fetch, timeoutMs = 5000, tries = 3): Promise<string | undefined> {
  if (!router) return undefined;
  const base = `http://${router}:${ONBOARDING_RELAY_PORT}`;
  for (let i = 0; i < tries; i++) {
    let res: Response;
    try {
      res = await fetchImpl(new URL(ONBOARDING_RELAY_PROBE, base), { signal: AbortSignal.timeout(timeoutMs) });
    } catch (e) {
      const timedOut = (e as Error).name === 'TimeoutError' || /TIMEOUT/.test((e as { cause?: { code?: string } }).cause?.code ?? '');
      if (timedOut) continue;
      return undefined;
    }
    const j = (await res.json().catch(() => undefined)) as { relay?: unknown } | undefined;
    return res.ok && j?.relay === 'tips-onboarding' ? base : undefined;
  }
  return undefined;
}

/**
 * After onboarding through a relay the device was Blocked until the master's decision reached its
 * gateway; the relay answers once the row is Active, but under load the rules may trail it. Waits
 * (TCP connects only — nothing is sent, no secret spent) until `url`'s host and port take a
 * connection, or `timeoutMs` passed; EST then runs once, as always.
 */
export async function waitReachable(url: string, timeoutMs: number, log?: Logger): Promise<boolean> {
  const u = new URL(url);
  const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
  const end = Date.now() + timeoutMs;
  for (let attempt = 0; ; attempt++) {
    const ok = await new Promise<boolean>((resolve) => {
      const sock = connect({ host: u.hostname, port, timeout: 3000 }, () => {
        sock.destroy();
        resolve(true);
      });
      sock.on('timeout', () => {
        sock.destroy();
        resolve(false);
      });
      sock.on('error', () => resolve(false));
    });
    if (ok) return true;
    if (Date.now() >= end) return false;
    if (attempt === 0) log?.info({ event: 'waiting_for_gateway', url: `${u.protocol}//${u.host}` }, 'the owner is not reachable yet: waiting for the gateway to let this device through');
    await new Promise((r) => setTimeout(r, 500));
  }
}

export interface OnboardDeviceOptions {
  credentialFile: string;
  keyFile?: string;
  tcti?: string;
  rendezvous: string[];
  interfaces: string[];
  purpose?: string;
  configFile: string;
  stateDir: string;
  log: Logger;
  fetch?: typeof fetch;
  /** The onboarding relay: a URL, `none`, or undefined to look for one at the boot interface's router. */
  relay?: string;
}

/** TO1 + TO2 and the files; the caller enrolls. Refusals by the owner are `onboarding_refused` (exit 3). */
export async function onboardDevice(o: OnboardDeviceOptions): Promise<{ guid: string; owner: string; relay: string | null; setup: DeviceSetup }> {
  const credential = loadCredential(o.credentialFile);
  if (o.rendezvous.length > 0) credential.rendezvous = rendezvousFromUrls(o.rendezvous);
  const keyFile = o.keyFile ?? defaultKeyFile(o.credentialFile);
  const key = loadDeviceKey(keyFile, o.tcti);
  const facts = deviceFacts({ interfaces: o.interfaces, purpose: o.purpose, storagePath: existsSync(o.stateDir) ? o.stateDir : '/' });
  const relay = o.relay === 'none' ? undefined : (o.relay ?? (await discoverRelay(defaultRouter(facts.interfaces[0]!.name), o.fetch)));
  o.log.info({ event: 'onboarding', interfaces: facts.interfaces.map((i) => `${i.name}=${i.mac}`), arch: facts.arch, ramMb: facts.ramMb, relay: relay ?? null }, 'onboarding: finding the owner');
  let r: Awaited<ReturnType<typeof onboard>>;
  try {
    r = await onboard(credential, key, { facts, ...(relay ? { relay } : {}), ...(o.fetch ? { fetch: o.fetch } : {}), ...(o.tcti ? { tpm: await deviceTpm(o.tcti, keyFile) } : {}) });
  } catch (e) {
    if (!(e instanceof OnboardingError)) throw e;
    const refused = ['attestation_failed', 'voucher_used', 'no_profile', 'registration_failed', 'voucher_not_ours', 'owner_proof_invalid', 'setup_invalid'].includes(e.code);
    throw new ClientError(refused ? 'onboarding_refused' : e.code === 'unreachable' ? 'master_unreachable' : 'onboarding_failed', `onboarding (${e.step}): ${e.code}: ${e.message}`, e.code);
  }
  writeSetup(r.setup, o.configFile, o.stateDir);
  o.log.info({ event: 'onboarded', guid: r.guid, owner: r.owner, relay: r.relay, metal: r.setup.metalId, profile: r.setup.profile }, 'onboarded: a Metal Object now, enrolling next');
  return { guid: r.guid, owner: r.owner, relay: r.relay, setup: r.setup };
}

/**
 * The device's TPM for the tpm2 verifier (tpm-quote.ts): its identity (EK, AK — made once at a
 * persistent handle) for the hello, and evidence over the master's challenge and the owner's nonce,
 * certifying the device key the voucher binds (the handle of device.tpm). A device whose key is a
 * software file has no TPM evidence to give.
 */
async function deviceTpm(tcti: string, keyFile: string): Promise<{ identity: Uint8Array; evidence(challenge: Uint8Array, nonce: Uint8Array, pcrs: number[]): Promise<Uint8Array> }> {
  let record: TpmKeyRecord;
  try {
    record = JSON.parse(readFileSync(keyFile, 'utf8')) as TpmKeyRecord;
  } catch {
    throw new ClientError('config_invalid', `--tcti: the device key ${keyFile} is not a TPM key record (device.tpm)`);
  }
  const identity = await tpmIdentity({ tcti });
  return { identity, evidence: (challenge, nonce, pcrs) => makeTpmEvidence({ tcti, challenge, nonce, pcrs, deviceHandle: record.tpm2.handle }) };
}
