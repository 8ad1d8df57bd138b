import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { OwnerId } from '@tips/core';
import { type CoseKey, exportCoseKey, importKey } from '@tips/suit';
import type { Clock, Random } from '../../ports.ts';
import type { EnrollmentService } from '../enrollment/service.ts';
import type { GlazeService } from '../glazes/service.ts';
import type { MetalService } from '../metals/service.ts';
import type { SpaceService } from '../spaces/service.ts';
import { checkToken, signCwt, signJwt, spkiOf, type TokenCheck, TokenCheckError, type TokenClaims } from '@tips/trust';
import { TokenError } from './errors.ts';
import { AUDIENCE_RE, CHALLENGE_SECONDS, DEFAULT_TOKEN_MINUTES, type IssuedToken, MAX_TOKEN_MINUTES, SCOPE_RE, type VerifiedToken } from './model.ts';
import type { TokenStore } from './store.ts';

export const TOKEN_ISSUER = 'urn:tips:master';

export interface IssueInput {
  audience: string;
  scope: string[];
  ttlMinutes?: number;
  /** The holder's public key (PEM or JWK JSON), or a metal whose current certificate key holds the token. */
  holder: { publicKey?: string; metal?: string; certificateSpki?: Uint8Array };
}

export interface VerifyExpectation {
  audience: string;
  /** A scope the token must carry. */
  scope?: string;
  /** Proof by signature over a fresh challenge. */
  proof?: { nonce: string; signature: string };
  /** Proof by the TLS connection: the SPKI of the client certificate's key. */
  tlsSpki?: Uint8Array;
}

/** An Ed25519 token-signing key made in memory (tests; a master without a CA directory). */
export function ephemeralTokenKey(): CoseKey {
  const { privateKey } = generateKeyPairSync('ed25519');
  return importKey(privateKey);
}

const secs = (d: Date) => Math.floor(d.getTime() / 1000);

/**
 * Authorization tokens (S11): issued to an owner's chosen holder key, one hop (audience) each,
 * scoped to the owner's own Glazes, Spaces, metals or components, minutes of life, and accepted
 * only with proof that the presenter holds the `cnf` key — a fresh challenge signed with it, or
 * an mTLS connection made with it.
 */
export class TokenService {
  private keyPromise: Promise<CoseKey> | undefined;

  constructor(
    private readonly store: TokenStore,
    private readonly metals: MetalService,
    private readonly spaces: SpaceService,
    private readonly glazes: GlazeService,
    private readonly enrollment: EnrollmentService,
    private readonly clock: Clock,
    private readonly random: Random,
    private readonly keySource: () => Promise<CoseKey>,
  ) {}

  key(): Promise<CoseKey> {
    this.keyPromise ??= this.keySource();
    return this.keyPromise;
  }

  /** The public half of the token key, for resource servers that verify tokens themselves. */
  async issuerKey(): Promise<{ coseKey: string; jwk: unknown; kid: string }> {
    const k = await this.key();
    const pub = k.publicKey!;
    return { coseKey: Buffer.from(exportCoseKey({ publicKey: pub })).toString('base64url'), jwk: pub.export({ format: 'jwk' }), kid: this.kid(pub) };
  }

  private kid(pub: KeyObject): string {
    return Buffer.from(spkiOf(pub)).subarray(-8).toString('hex');
  }

  async issue(ownerId: OwnerId, input: IssueInput): Promise<IssuedToken> {
    if (!AUDIENCE_RE.test(input.audience)) throw new TokenError('scope_invalid', 'audience must be urn:tips:master or urn:tips:metal:<TIPS ID>', 'audience');
    if (input.audience.startsWith('urn:tips:metal:')) await this.metals.get(ownerId, input.audience.slice('urn:tips:metal:'.length));
    const ttl = input.ttlMinutes ?? DEFAULT_TOKEN_MINUTES;
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TOKEN_MINUTES) throw new TokenError('scope_invalid', `ttlMinutes must be an integer from 1 to ${MAX_TOKEN_MINUTES}`, 'ttlMinutes');
    if (input.scope.length === 0 || input.scope.length > 16) throw new TokenError('scope_invalid', 'give 1 to 16 scopes', 'scope');
    const scope: string[] = [];
    for (const [i, s] of input.scope.entries()) scope.push(await this.checkScope(ownerId, s, `scope[${i}]`));
    let holder: KeyObject;
    let subject: string;
    if ((input.holder.publicKey === undefined) === (input.holder.metal === undefined)) {
      throw new TokenError('holder_key_invalid', 'give exactly one of holder.publicKey or holder.metal', 'holder');
    }
    if (input.holder.metal !== undefined) {
      const metal = await this.metals.get(ownerId, input.holder.metal);
      // On the metal API the key is the certificate's on this very connection: while a renewal is
      // unproven the metal has two active certificates, and the newest may not be the one it holds.
      const spki = input.holder.certificateSpki ?? (await this.enrollment.activeKeyOfMetal(ownerId, metal.id));
      holder = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
      subject = `urn:tips:metal:${metal.id}`;
    } else {
      try {
        const k = importKey(input.holder.publicKey!);
        holder = k.publicKey ?? createPublicKey(k.privateKey!);
      } catch (e) {
        throw new TokenError('holder_key_invalid', `holder.publicKey: ${(e as Error).message}`, 'holder.publicKey');
      }
      if (!(holder.asymmetricKeyType === 'ed25519' || (holder.asymmetricKeyType === 'ec' && holder.asymmetricKeyDetails?.namedCurve === 'prime256v1'))) {
        throw new TokenError('holder_key_invalid', 'holder.publicKey must be an Ed25519 or P-256 public key', 'holder.publicKey');
      }
      subject = `urn:tips:owner:${ownerId}`;
    }
    const now = this.clock.now();
    const cti = this.random.bytes(16);
    const claims: TokenClaims = {
      iss: TOKEN_ISSUER,
      sub: subject,
      aud: input.audience,
      exp: secs(now) + ttl * 60,
      nbf: secs(now) - 5,
      iat: secs(now),
      cti,
      scope: scope.join(' '),
      cnf: holder,
    };
    const key = await this.key();
    const kid = this.kid(key.publicKey!);
    return {
      cwt: Buffer.from(signCwt(claims, key, new Uint8Array(Buffer.from(kid, 'hex')))).toString('base64url'),
      jwt: signJwt(claims, key, kid),
      cti: Buffer.from(cti).toString('hex'),
      audience: input.audience,
      subject,
      scope,
      expiresAt: new Date((claims.exp ?? 0) * 1000).toISOString(),
    };
  }

  /** Scopes name only the owner's own resources, by their IDs. */
  private async checkScope(ownerId: OwnerId, s: string, field: string): Promise<string> {
    const m = SCOPE_RE.exec(s);
    if (!m) throw new TokenError('scope_invalid', `"${s.slice(0, 80)}" is not <pull|update|upload|register>:<glaze|space|metal|component>:<id or name>`, field);
    const [, action, kind, ref] = m as unknown as [string, string, string, string];
    const id =
      kind === 'glaze'
        ? (await this.glazes.get(ownerId, ref)).id
        : kind === 'space'
          ? (await this.spaces.get(ownerId, ref)).id
          : kind === 'metal'
            ? (await this.metals.get(ownerId, ref)).id
            : ref;
    return `${action}:${kind}:${id}`;
  }

  async challenge(ownerId: OwnerId): Promise<{ nonce: string; expiresAt: string }> {
    const now = this.clock.now();
    const nonce = Buffer.from(this.random.bytes(24)).toString('base64url');
    const expiresAt = new Date(now.getTime() + CHALLENGE_SECONDS * 1000).toISOString();
    await this.store.insertChallenge({ nonce, ownerId, expiresAt, createdAt: now.toISOString() });
    return { nonce, expiresAt };
  }

  /**
   * Verifies a token for one hop with @tips/trust's `checkToken` (signature, issuer, time,
   * audience, scope, then proof of possession) — the same check a metal runs. A signature proof
   * must answer a challenge this master issued, spent here exactly once.
   */
  async verify(token: string, expect: VerifyExpectation): Promise<VerifiedToken> {
    const base: TokenCheck = { issuerKeys: [await this.key()], issuer: TOKEN_ISSUER, audience: expect.audience, scope: expect.scope, now: secs(this.clock.now()) };
    const check = (proof?: TokenCheck['proof']) => {
      try {
        return checkToken(token, proof ? { ...base, proof } : base);
      } catch (e) {
        if (e instanceof TokenCheckError) throw new TokenError(e.code, e.message, e.code.startsWith('pop_') ? 'proof' : e.code === 'token_scope_insufficient' ? 'scope' : 'token');
        throw e;
      }
    };
    if (expect.tlsSpki) {
      try {
        return { ...check({ tlsSpki: expect.tlsSpki }), pop: 'mtls' };
      } catch (e) {
        if (!(e instanceof TokenError && e.code === 'pop_invalid' && expect.proof)) throw e;
      }
    }
    if (!expect.proof) {
      check();
      throw new TokenError('pop_required', 'prove possession of the token key: sign a fresh challenge (POST /api/v1/tokens/challenge)', 'proof');
    }
    // Everything but the proof must hold before a challenge is spent.
    try {
      check();
    } catch (e) {
      if (!(e instanceof TokenError && e.code === 'pop_required')) throw e;
    }
    if (!(await this.store.consumeChallenge(expect.proof.nonce, this.clock.now().toISOString()))) {
      throw new TokenError('challenge_invalid', 'the challenge is unknown, used or expired', 'proof.nonce');
    }
    return { ...check(expect.proof), pop: 'signature' };
  }

  /**
   * The operator→master upload hop (S11): a token for audience `urn:tips:master`, issued by this
   * owner, carrying `upload:space:<id>` for every Space the new Glaze may serve, presented with a
   * proof of possession (a challenge signed by the holder key). Without a token the upload is
   * refused only when the master requires upload tokens (`--require-upload-token`).
   */
  async authorizeUpload(
    ownerId: OwnerId,
    spaceIds: readonly string[],
    presented: { token?: string; nonce?: string; signature?: string },
    required: boolean,
  ): Promise<void> {
    if (!presented.token) {
      if (required) throw new TokenError('upload_token_required', 'this master requires an upload token (X-Tips-Token) with a proof of possession for Glaze uploads', 'x-tips-token');
      return;
    }
    if (spaceIds.length === 0) {
      throw new TokenError('token_scope_insufficient', 'an upload under a token must name its Spaces; the token must carry upload:space:<id> for each', 'spaces');
    }
    const proof = presented.nonce && presented.signature ? { nonce: presented.nonce, signature: presented.signature } : undefined;
    const v = await this.verify(presented.token, { audience: TOKEN_ISSUER, scope: `upload:space:${spaceIds[0]}`, proof });
    if (v.claims.sub !== `urn:tips:owner:${ownerId}`) throw new TokenError('token_owner_mismatch', 'the token was not issued to the owner making this request', 'x-tips-token');
    const granted = new Set((v.claims.scope ?? '').split(' '));
    const missing = spaceIds.find((id) => !granted.has(`upload:space:${id}`));
    if (missing) throw new TokenError('token_scope_insufficient', `the token does not carry upload:space:${missing}`, 'scope');
  }

  /** Introspection (RFC 7662 style) for constrained resource servers: active or not, and why. */
  async introspect(token: string, expect: VerifyExpectation): Promise<Record<string, unknown>> {
    try {
      const v = await this.verify(token, expect);
      const c = v.claims;
      return {
        active: true,
        iss: c.iss,
        sub: c.sub,
        aud: c.aud,
        exp: c.exp,
        iat: c.iat,
        scope: c.scope,
        cti: c.cti ? Buffer.from(c.cti).toString('hex') : undefined,
        format: v.format,
        pop: v.pop,
      };
    } catch (e) {
      if (e instanceof TokenError) return { active: false, reason: e.code };
      throw e;
    }
  }
}
