/**
 * `tips-client enroll` and the agent's renewal: the whole life of the metal's credential (S6, S14).
 * Order matters for power safety: the key is on disk (0600) before the request that spends the
 * secret, the certificate is on disk before the generation is put in force, and enrollment.json is
 * removed only after that — so a cut at any point either repeats an unspent enrollment or finds a
 * finished one at the next start (recoverIdentity).
 */
import { readFileSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import type { ClientConfig } from '../config/config.ts';
import { loadEnrollmentSecret } from '../config/config.ts';
import { ClientError } from '../errors.ts';
import { removeDurably, syncDir } from '../state/files.ts';
import { makeKeyAndCsr, simpleEnroll, simpleReenroll } from './est.ts';
import { activate, loadIdentity, type MetalIdentity, newGeneration, recoverIdentity, writeCertificate, writeKey } from './store.ts';

export function readCa(config: ClientConfig): string {
  try {
    return readFileSync(config.caFile, 'utf8');
  } catch (e) {
    throw new ClientError('config_invalid', `config caFile: cannot read ${config.caFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

export type EnrollOutcome = { status: 'enrolled' | 'already_enrolled'; identity: MetalIdentity };

/** Enrolls once; an already enrolled metal is left as it is (exit 0), its spent secret file removed. */
export async function enroll(config: ClientConfig, stateDir: string, log: Logger): Promise<EnrollOutcome> {
  const recovered = recoverIdentity(stateDir);
  if (recovered.activated) log.info({ event: 'identity_recovered', dir: recovered.activated }, 'finished an interrupted enrollment');
  const existing = loadIdentity(stateDir);
  if (existing) {
    if (loadEnrollmentSecret(config.enrollmentFile)) removeDurably(config.enrollmentFile);
    log.info({ event: 'already_enrolled', serial: existing.serial, notAfter: existing.notAfter.toISOString() }, 'already enrolled');
    return { status: 'already_enrolled', identity: existing };
  }
  const secret = loadEnrollmentSecret(config.enrollmentFile);
  if (!secret) throw new ClientError('enrollment_missing', `not enrolled and no enrollment secret at ${config.enrollmentFile}`);
  const ca = readCa(config);
  const csr = await makeKeyAndCsr(config.tipsId);
  const gen = newGeneration(stateDir);
  writeKey(gen, csr.keyPem);
  log.info({ event: 'enroll_request', estUrl: config.estUrl, secretId: secret.secretId }, 'EST simpleenroll');
  const { certPem } = await simpleEnroll(config.estUrl, ca, secret, csr, config.tipsId);
  writeCertificate(gen, certPem);
  activate(stateDir, gen);
  removeDurably(config.enrollmentFile);
  const identity = loadIdentity(stateDir)!;
  log.info({ event: 'enrolled', serial: identity.serial, notAfter: identity.notAfter.toISOString() }, 'enrolled');
  return { status: 'enrolled', identity };
}

/** Renewal is due past two thirds of the certificate's life. */
export function renewalDue(id: Pick<MetalIdentity, 'notBefore' | 'notAfter'>, now: Date): boolean {
  const life = id.notAfter.getTime() - id.notBefore.getTime();
  return now.getTime() >= id.notBefore.getTime() + (life * 2) / 3;
}

/**
 * Proves a freshly activated identity (an authenticated call with it). Until it is proven the
 * previous generation stays on disk; if the master refuses the new one, the previous is put back.
 */
export type ProveIdentity = (next: MetalIdentity) => Promise<void>;

async function proveOrRollBack(stateDir: string, previous: MetalIdentity, next: MetalIdentity, prove: ProveIdentity | undefined, log: Logger): Promise<MetalIdentity> {
  if (prove) {
    try {
      await prove(next);
    } catch (e) {
      if (e instanceof ClientError && (e.code === 'unauthenticated' || e.code === 'forbidden')) {
        log.error({ event: 'identity_refused', serial: next.serial, code: e.remoteCode ?? e.code }, 'the master refused the new certificate; the previous one is put back');
        // The refused pair goes first (recoverIdentity would put a newer pair back); a cut between the
        // two steps leaves `current` dangling, and recoverIdentity then puts the previous pair in force.
        rmSync(next.dir, { recursive: true, force: true });
        syncDir(dirname(next.dir));
        activate(stateDir, previous.dir);
        throw e;
      }
      // Unreachable master: the new pair stays in force (the master issued it); the next call proves it.
      log.warn({ event: 'identity_unproven', serial: next.serial, message: (e as Error).message }, 'new certificate not yet proven; the previous generation is kept until the next start');
      return next;
    }
  }
  recoverIdentity(stateDir);
  return next;
}

/** simplereenroll with a new key; the new pair is put in force only once it is on disk, the old one removed once the new one is proven. */
export async function reenroll(config: ClientConfig, stateDir: string, current: MetalIdentity, log: Logger, prove?: ProveIdentity): Promise<MetalIdentity> {
  const csr = await makeKeyAndCsr(config.tipsId);
  const gen = newGeneration(stateDir);
  writeKey(gen, csr.keyPem);
  log.info({ event: 'reenroll_request', serial: current.serial, notAfter: current.notAfter.toISOString() }, 'EST simplereenroll');
  const { certPem } = await simpleReenroll(config.estUrl, readCa(config), current, csr, config.tipsId);
  writeCertificate(gen, certPem);
  activate(stateDir, gen);
  const next = await proveOrRollBack(stateDir, current, loadIdentity(stateDir)!, prove, log);
  log.info({ event: 'reenrolled', serial: next.serial, previous: current.serial, notAfter: next.notAfter.toISOString() }, 're-enrolled');
  return next;
}

/**
 * Obeys a verified re-enrollment order (identity/orders.ts): a new key, simpleenroll with the
 * order's one-use secret at the order's EST server (our CA file still pins the TLS peer). The secret
 * is never written to disk.
 */
export async function enrollByOrder(config: ClientConfig, stateDir: string, current: MetalIdentity, order: { estUri: string; secretId: string; secret: string }, log: Logger, prove?: ProveIdentity): Promise<MetalIdentity> {
  const csr = await makeKeyAndCsr(config.tipsId);
  const gen = newGeneration(stateDir);
  writeKey(gen, csr.keyPem);
  log.info({ event: 'reenroll_order_request', serial: current.serial, estUri: order.estUri, secretId: order.secretId }, 'EST simpleenroll by a signed order');
  const { certPem } = await simpleEnroll(order.estUri, readCa(config), order, csr, config.tipsId);
  writeCertificate(gen, certPem);
  activate(stateDir, gen);
  const next = await proveOrRollBack(stateDir, current, loadIdentity(stateDir)!, prove, log);
  log.info({ event: 'reenrolled', serial: next.serial, previous: current.serial, by: 'order', notAfter: next.notAfter.toISOString() }, 're-enrolled by a signed order (new key)');
  return next;
}
