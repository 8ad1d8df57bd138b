import { createHash, createPublicKey, timingSafeEqual } from 'node:crypto';
import { encodeBase32, InvalidValueError, type OwnerId, type TipsId } from '@tips/core';
import { type CheckedCsr, certificateFingerprint, certificateIdentities, certsOnlyPkcs7, checkCsr, claimedIdentities, derFingerprint, LeafIssuer, PkiError, parseCertificate, serialFrom, type x509 } from '@tips/trust';
import { isUniqueViolation } from '../../db/database.ts';
import type { KeysetWindow } from '../../db/keyset.ts';
import type { DomainEvents } from '../../events.ts';
import type { Clock, Random } from '../../ports.ts';
import type { MetalService } from '../metals/service.ts';
import type { SpaceService } from '../spaces/service.ts';
import { caPem, type MasterCa } from './ca.ts';
import { EnrollmentError } from './errors.ts';
import {
  DEFAULT_CERT_LIFETIME_HOURS,
  DEFAULT_SECRET_TTL_MINUTES,
  FAILED_ENROLLMENT_WINDOW_MS,
  MAX_FAILED_ENROLLMENTS,
  MAX_FAILED_ENROLLMENTS_PER_IDENTITY,
  MAX_TRACKED_FAILURES,
  type EnrollmentSecret,
  IMAGE_KEY_PREFIX,
  type IssuedCertificate,
  MAX_SECRET_TTL_MINUTES,
  MAX_SECRET_USES,
  type MetalPrincipal,
  type RevokeReason,
  SECRET_PREFIX,
} from './model.ts';
import type { EnrollmentStore } from './store.ts';

export interface CreateSecretInput {
  metal?: string;
  space?: string;
  /** T14 image-key mode: the public key (PEM) of the key pair baked into the Phase 1 image, instead of a secret. */
  imagePublicKey?: string;
  maxUses?: number;
  expiresInMinutes?: number;
}

/** What the TLS layer saw of the peer: whether its chain verified against our CA, and its DER. */
export interface PeerCertificate {
  authorized: boolean;
  der?: Uint8Array;
}

const SECRET_RE = /^est_[A-Za-z0-9_-]{43}$/;
const SECRET_ID_RE = /^ens_[0-9a-hjkmnp-tv-z]{26}$/;

/** Secrets are 256-bit random values: a plain SHA-256 is a sufficient at-rest hash. */
const hashSecret = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');
const sha256Hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** The SPKI DER of an image public key (P-256: the curve EST CSRs are accepted with). */
function imageKeySpki(pem: string): Uint8Array {
  try {
    const k = createPublicKey(pem);
    if (k.asymmetricKeyType !== 'ec' || k.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw new Error('expected an ECDSA P-256 public key');
    return new Uint8Array(k.export({ type: 'spki', format: 'der' }));
  } catch (e) {
    throw new InvalidValueError('imagePublicKey', `imagePublicKey: ${(e as Error).message}`);
  }
}

function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && timingSafeEqual(x, y);
}

/** One LeafIssuer per CA (its template is built once). */
const leafIssuers = new WeakMap<MasterCa, Promise<LeafIssuer>>();

function checkCsrOrThrow(der: Uint8Array): CheckedCsr {
  try {
    return checkCsr(der);
  } catch (e) {
    pkiToEnrollment(e);
  }
}

function pkiToEnrollment(e: unknown): never {
  if (e instanceof PkiError) {
    const code = e.code === 'csr_signature_invalid' || e.code === 'csr_key_unsupported' || e.code === 'csr_identity_missing' ? e.code : 'csr_malformed';
    throw new EnrollmentError(code, e.message, 'csr');
  }
  throw e;
}

/**
 * Who an EST request says it is, before anything is verified (the throttle's key): the HTTP Basic
 * user (the secret ID), else the client certificate (re-enrollment), else the metal(s) its CSR
 * names (image-key mode), else nothing. Bounded in length: the values are the requester's.
 */
export function estIdentity(presented: { basicUser?: string; clientCertificate?: Uint8Array; csr?: Uint8Array }): string {
  if (presented.basicUser !== undefined) return `secret ${presented.basicUser.slice(0, 64)}`;
  if (presented.clientCertificate?.length) return `certificate ${sha256Hex(presented.clientCertificate)}`;
  const metals = presented.csr ? claimedIdentities(presented.csr).map((i) => `${i.kind}:${i.id}`) : [];
  return metals.length ? `csr ${metals.sort().join(',').slice(0, 200)}` : 'none';
}

/**
 * Enrollment (S6, S14): the master's intermediate CA, enrollment secrets, the EST operations, the
 * record of every certificate issued and its revocation. Metal certificates name
 * `urn:tips:metal:<TIPS ID>` and live `certLifetimeHours`.
 */
export class EnrollmentService {
  private caPromise: Promise<MasterCa> | undefined;
  private blockCheck: ((metalId: TipsId) => Promise<boolean>) | undefined;
  /** Refused EST attempts per remote address and per (address, identity) in the current window (per process). */
  private readonly failures = new Map<string, { count: number; since: number }>();

  constructor(
    private readonly store: EnrollmentStore,
    private readonly metals: MetalService,
    private readonly spaces: SpaceService,
    private readonly events: DomainEvents,
    private readonly clock: Clock,
    private readonly random: Random,
    private readonly caSource: () => Promise<MasterCa>,
    private readonly certLifetimeHours = DEFAULT_CERT_LIFETIME_HOURS,
  ) {
    // A deleted (retired) metal keeps no working certificate.
    events.on('metal.deleted', async (e) => {
      await this.store.revokeSubject({ kind: 'metal', id: e.metalId }, this.now(), 'deleted');
      await this.events.emit('metal.access.revoked', { ownerId: e.ownerId, metalId: e.metalId, reason: 'deleted' });
    });
  }

  /** Wired by the composition root: a metal blocked by TIPS-D (T16) is refused on the metal API while the block lasts. */
  useBlockCheck(check: (metalId: TipsId) => Promise<boolean>): void {
    this.blockCheck = check;
  }

  ca(): Promise<MasterCa> {
    this.caPromise ??= this.caSource();
    return this.caPromise;
  }

  private now(): string {
    return this.clock.now().toISOString();
  }

  // --- enrollment secrets (owner API) -------------------------------------------------------

  async createSecret(ownerId: OwnerId, input: CreateSecretInput): Promise<{ secret: EnrollmentSecret; value: string | undefined }> {
    if ((input.metal === undefined) === (input.space === undefined)) {
      throw new InvalidValueError(input.metal === undefined ? 'metal' : 'space', 'give exactly one of metal or space');
    }
    const maxUses = input.maxUses ?? 1;
    if (!Number.isInteger(maxUses) || maxUses < 1 || maxUses > MAX_SECRET_USES) throw new InvalidValueError('maxUses', `maxUses must be an integer from 1 to ${MAX_SECRET_USES}`);
    const ttl = input.expiresInMinutes ?? DEFAULT_SECRET_TTL_MINUTES;
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_SECRET_TTL_MINUTES) {
      throw new InvalidValueError('expiresInMinutes', `expiresInMinutes must be an integer from 1 to ${MAX_SECRET_TTL_MINUTES}`);
    }
    let scope: EnrollmentSecret['scope'];
    if (input.metal !== undefined) scope = { kind: 'metal', id: (await this.metals.get(ownerId, input.metal)).id };
    else {
      const space = await this.spaces.get(ownerId, input.space!);
      if (space.phase !== 1) throw new EnrollmentError('scope_invalid', `Space "${space.name}" is a Phase ${space.phase} Space; enrollment secrets are per metal or per Phase 1 Space`, 'space');
      scope = { kind: 'space', id: space.id };
    }
    return this.issueSecret(ownerId, scope, maxUses, ttl, input.imagePublicKey);
  }

  /** A one-use secret for a metal the caller has just made (onboarding): the metal is not read again. */
  createSecretForMetal(ownerId: OwnerId, metalId: TipsId, expiresInMinutes: number): Promise<{ secret: EnrollmentSecret; value: string | undefined }> {
    return this.issueSecret(ownerId, { kind: 'metal', id: metalId }, 1, expiresInMinutes, undefined);
  }

  private async issueSecret(ownerId: OwnerId, scope: EnrollmentSecret['scope'], maxUses: number, ttl: number, imagePublicKey: CreateSecretInput['imagePublicKey']): Promise<{ secret: EnrollmentSecret; value: string | undefined }> {
    const now = this.clock.now();
    const secret: EnrollmentSecret = {
      id: `ens_${encodeBase32(this.random.bytes(16))}`,
      ownerId,
      scope,
      method: 'secret',
      maxUses,
      uses: 0,
      expiresAt: new Date(now.getTime() + ttl * 60_000).toISOString(),
      createdAt: now.toISOString(),
      revokedAt: null,
    };
    if (imagePublicKey !== undefined) {
      const spki = imageKeySpki(imagePublicKey);
      secret.method = 'image-key';
      try {
        await this.store.insertSecret(secret, IMAGE_KEY_PREFIX + sha256Hex(spki));
      } catch (e) {
        if (isUniqueViolation(e)) throw new InvalidValueError('imagePublicKey', 'this image key is already registered');
        throw e;
      }
      return { secret, value: undefined };
    }
    const value = SECRET_PREFIX + Buffer.from(this.random.bytes(32)).toString('base64url');
    await this.store.insertSecret(secret, hashSecret(value));
    return { secret, value };
  }

  listSecrets(ownerId: OwnerId, window?: KeysetWindow): Promise<EnrollmentSecret[]> {
    return this.store.listSecrets(ownerId, window);
  }

  async revokeSecret(ownerId: OwnerId, id: string): Promise<void> {
    if (!(await this.store.revokeSecret(ownerId, id, this.now()))) throw new EnrollmentError('secret_not_found', `no active enrollment secret ${id.slice(0, 40)}`, 'id');
  }

  // --- EST ----------------------------------------------------------------------------------

  /**
   * Throttles refused EST attempts within a window, counted per (remote address, presented identity)
   * — MAX_FAILED_ENROLLMENTS_PER_IDENTITY — and per address as a higher ceiling —
   * MAX_FAILED_ENROLLMENTS. Metals behind one site's NAT share an address: one bad device locks out
   * only itself, while an attacker rotating identities still meets the address ceiling. A throttled
   * attempt is refused before any work and counts toward neither. Guessing secrets is hopeless anyway
   * (256 bits); this bounds the CSR-verification work an attacker buys. `identity`: estIdentity().
   */
  async throttled<T>(remote: string, identity: string, attempt: () => Promise<T>): Promise<T> {
    const now = this.clock.now().getTime();
    const keys = [
      { key: `address ${remote}`, max: MAX_FAILED_ENROLLMENTS },
      { key: `identity ${remote} ${identity}`, max: MAX_FAILED_ENROLLMENTS_PER_IDENTITY },
    ];
    for (const { key, max } of keys) {
      const f = this.failures.get(key);
      if (f && now - f.since < FAILED_ENROLLMENT_WINDOW_MS && f.count >= max) {
        throw new EnrollmentError('too_many_attempts', 'too many refused enrollment attempts; try again later');
      }
    }
    try {
      return await attempt();
    } catch (e) {
      if (e instanceof EnrollmentError && e.security) {
        for (const { key } of keys) {
          const cur = this.failures.get(key);
          if (!cur || now - cur.since >= FAILED_ENROLLMENT_WINDOW_MS) this.failures.set(key, { count: 1, since: now });
          else cur.count++;
        }
        while (this.failures.size > MAX_TRACKED_FAILURES) this.failures.delete(this.failures.keys().next().value as string);
      }
      throw e;
    }
  }

  /** The CA certificates (intermediate, then root) as a certs-only PKCS#7 (EST /cacerts). */
  async caCertificates(): Promise<Uint8Array> {
    const ca = await this.ca();
    return certsOnlyPkcs7([ca.intermediate.cert, ca.root]);
  }

  async caPem(): Promise<{ rootPem: string; intermediatePem: string }> {
    return caPem(await this.ca());
  }

  /**
   * EST simpleenroll authenticated by an enrollment secret (HTTP Basic: user = secret ID,
   * password = secret). The CSR must verify and name exactly the one metal the secret may enroll.
   * Exactly `maxUses` enrollments succeed, however many race; a refused request issues nothing.
   */
  async enroll(credentials: { id: string; secret: string } | undefined, csrDer: Uint8Array): Promise<{ der: Uint8Array; record: IssuedCertificate }> {
    let secret: EnrollmentSecret;
    let csr: CheckedCsr;
    if (credentials) {
      const found = SECRET_ID_RE.test(credentials.id) ? await this.store.findSecret(credentials.id) : undefined;
      const given = SECRET_RE.test(credentials.secret) ? hashSecret(credentials.secret) : hashSecret(`x${credentials.secret}`);
      if (found?.secret.method !== 'secret' || !sameHash(found.secretHash, given)) throw new EnrollmentError('enrollment_secret_invalid', 'the enrollment secret is not valid');
      secret = found.secret;
      this.assertUsable(secret, this.clock.now());
      csr = checkCsrOrThrow(csrDer);
    } else {
      // T14 image-key mode: no secret; the CSR's own (verified) signature proves the image key.
      try {
        csr = checkCsr(csrDer);
      } catch (e) {
        if (e instanceof PkiError) throw new EnrollmentError('enrollment_unauthenticated', 'an enrollment secret (HTTP Basic) or a registered image key is required');
        throw e;
      }
      const found = await this.store.findSecretByHash(IMAGE_KEY_PREFIX + sha256Hex(csr.spki));
      if (!found) throw new EnrollmentError('enrollment_unauthenticated', 'an enrollment secret (HTTP Basic) or a registered image key is required');
      secret = found;
      this.assertUsable(secret, this.clock.now());
    }
    const now = this.clock.now();
    const metals = csr.identities.filter((i) => i.kind === 'metal');
    if (csr.identities.length === 0) throw new EnrollmentError('csr_identity_missing', 'the CSR must name its metal: subjectAltName URI urn:tips:metal:<TIPS ID> (or CN = the TIPS ID)', 'csr');
    if (metals.length !== 1 || csr.identities.length !== 1) throw new EnrollmentError('csr_identity_mismatch', 'the CSR must name exactly one metal', 'csr');
    const metalId = metals[0]!.id as TipsId;
    // S14: a retired metal never comes back, whatever secret (a Space's too) it shows.
    if ((await this.store.retiredAt(metalId)) !== undefined) throw new EnrollmentError('metal_retired', 'this metal has been retired by its owner');
    if (secret.scope.kind === 'metal') {
      if (metalId !== secret.scope.id) throw new EnrollmentError('csr_identity_mismatch', 'the CSR names a metal this enrollment secret may not enroll', 'csr');
    } else {
      const member = await this.metals
        .get(secret.ownerId, metalId)
        .then(async (m) => (await this.spaces.membershipsOfMetal(m.id)).some((s) => s.spaceId === secret.scope.id))
        .catch(() => false);
      if (!member) throw new EnrollmentError('csr_identity_mismatch', 'the CSR names a metal this enrollment secret may not enroll', 'csr');
    }
    const { der, record } = await this.sign(secret.ownerId, metalId, csr.spki, now, 'enroll', secret.id);
    if (!(await this.store.enrollWithSecret(secret.id, now.toISOString(), record))) {
      // Lost the race for the last use (or it expired meanwhile): the signed certificate is dropped.
      const after = await this.store.findSecret(secret.id);
      if (after) this.assertUsable(after.secret, now);
      throw new EnrollmentError('enrollment_secret_exhausted', 'the enrollment secret has no use left');
    }
    await this.events.emit('enrollment.enrolled', { ownerId: secret.ownerId, metalId, secretId: secret.id });
    return { der, record };
  }

  private assertUsable(secret: EnrollmentSecret, now: Date): void {
    if (secret.revokedAt !== null) throw new EnrollmentError('enrollment_secret_invalid', 'the enrollment secret is not valid');
    if (secret.expiresAt <= now.toISOString()) throw new EnrollmentError('enrollment_secret_expired', 'the enrollment secret has expired');
    if (secret.uses >= secret.maxUses) throw new EnrollmentError('enrollment_secret_exhausted', 'the enrollment secret has no use left');
  }

  /**
   * EST simplereenroll: the metal proves itself with its current certificate (mTLS); the CSR must
   * name the same metal. The old certificate is superseded when the new one is first used (proven).
   */
  async reenroll(principal: MetalPrincipal, csrDer: Uint8Array): Promise<{ der: Uint8Array; record: IssuedCertificate }> {
    const csr = checkCsrOrThrow(csrDer);
    if (csr.identities.length !== 1 || csr.identities[0]!.kind !== 'metal' || csr.identities[0]!.id !== principal.metalId) {
      throw new EnrollmentError('csr_identity_mismatch', 'a re-enrollment CSR must name the same metal as the current certificate', 'csr');
    }
    const now = this.clock.now();
    const { der, record } = await this.sign(principal.ownerId, principal.metalId as TipsId, csr.spki, now, 'reenroll', null);
    if (!(await this.store.reenroll(principal.serial, now.toISOString(), record))) {
      throw new EnrollmentError('certificate_revoked', 'the client certificate is no longer valid');
    }
    return { der, record };
  }

  /**
   * Signs a metal certificate with the intermediate on node:crypto (LeafIssuer: the same
   * TBSCertificate issueCertificate builds, from a template made once per CA).
   */
  private async sign(ownerId: OwnerId, metalId: TipsId, spki: Uint8Array, now: Date, via: 'enroll' | 'reenroll', secretId: string | null) {
    const ca = await this.ca();
    let issuer = leafIssuers.get(ca);
    if (!issuer) {
      issuer = LeafIssuer.of(ca.intermediate);
      leafIssuers.set(ca, issuer);
    }
    const seconds = (ms: number) => new Date(Math.floor(ms / 1000) * 1000);
    const notAfter = seconds(Math.min(now.getTime() + this.certLifetimeHours * 3_600_000, ca.intermediate.cert.notAfter.getTime()));
    const notBefore = seconds(now.getTime() - 60_000);
    const serial = serialFrom(this.random.bytes(16));
    const der = (await issuer).issue({ identity: { kind: 'metal', id: metalId }, spki, serial, notBefore, notAfter, usage: 'client' });
    const record: IssuedCertificate = {
      serial,
      ownerId,
      subject: { kind: 'metal', id: metalId },
      fingerprint: derFingerprint(der),
      publicKey: Buffer.from(spki).toString('base64'),
      notBefore: notBefore.toISOString(),
      notAfter: notAfter.toISOString(),
      status: 'active',
      issuedVia: via,
      secretId,
      revokedAt: null,
      revokeReason: null,
      createdAt: now.toISOString(),
    };
    return { der, record };
  }

  // --- mTLS identity ------------------------------------------------------------------------

  /**
   * Resolves the peer of an mTLS request to a metal: the chain verified against our CA, the
   * certificate is one we issued to a metal, still active (checked in the database on every
   * request, so a revocation bites at once) and within its validity.
   */
  async authenticateMetal(peer: PeerCertificate | undefined): Promise<MetalPrincipal> {
    if (!peer?.der) throw new EnrollmentError('client_certificate_required', 'a metal client certificate is required');
    if (!peer.authorized) throw new EnrollmentError('client_certificate_invalid', 'the client certificate is not issued by this master');
    let cert: x509.X509Certificate;
    try {
      cert = parseCertificate(peer.der);
    } catch {
      throw new EnrollmentError('client_certificate_invalid', 'the client certificate is not issued by this master');
    }
    const ids = certificateIdentities(cert);
    const metal = ids.length === 1 && ids[0]!.kind === 'metal' ? ids[0]! : undefined;
    if (!metal) throw new EnrollmentError('client_certificate_invalid', 'the client certificate does not name a metal');
    const record = await this.store.findCertificate(cert.serialNumber.toLowerCase());
    const fingerprint = await certificateFingerprint(cert);
    if (!record || record.fingerprint !== fingerprint || record.subject.kind !== 'metal' || record.subject.id !== metal.id) {
      throw new EnrollmentError('certificate_unknown', 'the client certificate is not one this master issued');
    }
    // The certificate proves which metal asks, so a retired one is told so (it then wipes its credentials).
    if (record.status !== 'active' && record.revokeReason === 'retired') throw new EnrollmentError('metal_retired', 'this metal has been retired by its owner');
    if (record.status !== 'active') throw new EnrollmentError('certificate_revoked', 'the client certificate has been revoked');
    const now = this.now();
    if (now < record.notBefore || now > record.notAfter) throw new EnrollmentError('certificate_expired', 'the client certificate has expired');
    if (this.blockCheck && (await this.blockCheck(metal.id as TipsId))) throw new EnrollmentError('metal_blocked', 'this metal is blocked by its owner');
    await this.proven(record);
    return { metalId: metal.id, ownerId: record.ownerId, serial: record.serial, fingerprint, notAfter: record.notAfter, spki: new Uint8Array(cert.publicKey.rawData) };
  }

  /**
   * A new certificate (re-enrollment, or enrollment by an order's secret) does not revoke the one it
   * replaces at issue time: if the answer never reaches the metal (a cut, a kill -9 before the
   * certificate is on its disk) the metal would be left with nothing that works. The older ones are
   * superseded when the new one is first used — it is then provably on the metal. Remembered per
   * process (bounded), so the UPDATE runs once per certificate per process.
   */
  private readonly provenSerials = new Set<string>();
  private lifecycleMetrics: { retired: { inc(): void }; superseded: { inc(n?: number): void } } | undefined;
  useLifecycleMetrics(m: { retired: { inc(): void }; superseded: { inc(n?: number): void } }): void {
    this.lifecycleMetrics = m;
  }
  private async proven(record: IssuedCertificate): Promise<void> {
    if (this.provenSerials.has(record.serial)) return;
    const n = await this.store.supersedeOlder(record, this.now());
    if (n > 0) this.lifecycleMetrics?.superseded.inc(n);
    if (this.provenSerials.size >= 50_000) this.provenSerials.delete(this.provenSerials.values().next().value as string);
    this.provenSerials.add(record.serial);
  }

  // --- certificates (owner API) -------------------------------------------------------------

  async listCertificates(ownerId: OwnerId, metalRef?: string, window?: KeysetWindow): Promise<IssuedCertificate[]> {
    const subject = metalRef === undefined ? undefined : { kind: 'metal', id: (await this.metals.get(ownerId, metalRef)).id };
    return this.store.listCertificates(ownerId, subject, window);
  }

  /** Revokes every active certificate of a metal (blocked, retired, or to force re-enrollment). */
  async revokeMetal(ownerId: OwnerId, metalRef: string, reason: RevokeReason = 'operator'): Promise<number> {
    const metal = await this.metals.get(ownerId, metalRef);
    const n = await this.store.revokeSubject({ kind: 'metal', id: metal.id }, this.now(), reason);
    await this.events.emit('metal.access.revoked', { ownerId, metalId: metal.id, reason: reason === 'retired' ? 'retired' : 'revoked' });
    return n;
  }

  /**
   * S14 retirement (`tips metal retire`): the metal's certificates are revoked (reason `retired`: the
   * next mTLS request answers 403 metal_retired, and the client wipes its credentials), its
   * metal-scoped enrollment secrets are revoked, and it can never enroll again. Metal tokens are
   * bound to the certificate key (PoP over mTLS), so they die with the certificate. Idempotent.
   */
  async retireMetal(ownerId: OwnerId, metalRef: string): Promise<{ metal: TipsId; retiredAt: string; certificatesRevoked: number; secretsRevoked: number }> {
    const metal = await this.metals.get(ownerId, metalRef);
    const at = this.now();
    const r = await this.store.retire(ownerId, metal.id, at);
    if (r.retiredAt === at) this.lifecycleMetrics?.retired.inc();
    await this.events.emit('metal.access.revoked', { ownerId, metalId: metal.id, reason: 'retired' });
    return { metal: metal.id, retiredAt: r.retiredAt, certificatesRevoked: r.certificates, secretsRevoked: r.secrets };
  }

  /** When the metal was retired, or null. */
  async retiredAt(metalId: TipsId): Promise<string | null> {
    return (await this.store.retiredAt(metalId)) ?? null;
  }

  /** For other domains (discovery blocking a metal): revoke by TIPS ID. */
  revokeMetalById(metalId: TipsId, reason: RevokeReason): Promise<number> {
    return this.store.revokeSubject({ kind: 'metal', id: metalId }, this.now(), reason);
  }

  /** The public key (SPKI DER) of a metal's active certificate: what a token for that metal is bound to. */
  async activeKeyOfMetal(ownerId: OwnerId, metalRef: string): Promise<Uint8Array> {
    const metal = await this.metals.get(ownerId, metalRef);
    const active = (await this.store.listCertificates(ownerId, { kind: 'metal', id: metal.id })).filter((c) => c.status === 'active').pop();
    if (!active) throw new EnrollmentError('certificate_not_found', `metal "${metalRef}" has no active certificate to bind a token to`, 'metal');
    return new Uint8Array(Buffer.from(active.publicKey, 'base64'));
  }

  async revokeCertificate(ownerId: OwnerId, serial: string): Promise<void> {
    if (!(await this.store.revokeCertificate(ownerId, serial.toLowerCase(), this.now(), 'operator'))) {
      throw new EnrollmentError('certificate_not_found', `no active certificate ${serial.slice(0, 64)}`, 'serial');
    }
    const record = await this.store.findCertificate(serial.toLowerCase());
    if (record?.subject.kind === 'metal') await this.events.emit('metal.access.revoked', { ownerId, metalId: record.subject.id as TipsId, reason: 'revoked' });
  }
}
