import { hash } from 'node:crypto';
import { InvalidValueError, newId, type OwnerId, parseName } from '@tips/core';
import type { KeysetWindow } from '../../db/keyset.ts';
import type { Clock, Random } from '../../ports.ts';
import { OwnerError } from './errors.ts';
import { API_TOKEN_FORMAT, type ApiToken, type Owner } from './model.ts';
import type { OwnerStore } from './store.ts';

const TOKEN_PREFIX = 'tips_';

/**
 * A token's `lastUsedAt` is written at most once per this period: a write per authenticated
 * request would make every read a write transaction (on SQLite, one writer for the whole master).
 */
export const TOKEN_TOUCH_PERIOD_MS = 60_000;

/** Tokens are 256-bit random values, so a plain SHA-256 is a sufficient at-rest hash. */
export function hashToken(token: string): string {
  return hash('sha256', token, 'hex');
}

function b64url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url');
}

export class OwnerService {
  constructor(
    private readonly store: OwnerStore,
    private readonly clock: Clock,
    private readonly random: Random,
  ) {}

  /**
   * Creates the admin on first start and returns its token (shown once). With `bootstrapToken`
   * (automation, tests) that token is used instead of a random one.
   */
  async ensureAdmin(bootstrapToken?: string): Promise<{ owner: Owner; token: string } | undefined> {
    if (bootstrapToken !== undefined && !API_TOKEN_FORMAT.test(bootstrapToken)) {
      throw new InvalidValueError('TIPS_BOOTSTRAP_ADMIN_TOKEN', 'must look like tips_ followed by 32–128 base64url characters');
    }
    if ((await this.store.countOwners()) > 0) return undefined;
    let owner: Owner;
    try {
      owner = await this.createOwner('admin', true);
    } catch (err) {
      // Another replica created the admin at the same moment: that one prints the token.
      if (err instanceof OwnerError && err.code === 'owner_name_taken') return undefined;
      throw err;
    }
    const token = await this.issueToken(owner.id, 'bootstrap', bootstrapToken);
    return { owner, token: token.secret };
  }

  async createOwner(nameInput: unknown, isAdmin = false): Promise<Owner> {
    const name = parseName(nameInput);
    const owner: Owner = {
      id: newId('owner', this.random.bytes(16)),
      name,
      isAdmin,
      createdAt: this.clock.now().toISOString(),
    };
    try {
      await this.store.insertOwner(owner);
    } catch (err) {
      if ((await this.store.listOwners()).some((o) => o.name === name)) {
        throw new OwnerError('owner_name_taken', `an owner named "${name}" already exists`, 'name');
      }
      throw err;
    }
    return owner;
  }

  async listOwners(actor: Owner, window?: KeysetWindow): Promise<Owner[]> {
    if (!actor.isAdmin) throw new OwnerError('forbidden', 'only an admin may list owners');
    return this.store.listOwners(window);
  }

  async createOwnerAsAdmin(actor: Owner, name: unknown): Promise<{ owner: Owner; token: string }> {
    if (!actor.isAdmin) throw new OwnerError('forbidden', 'only an admin may create owners');
    const owner = await this.createOwner(name);
    const token = await this.issueToken(owner.id, 'initial');
    return { owner, token: token.secret };
  }

  async issueToken(ownerId: OwnerId, nameInput: unknown, fixedSecret?: string): Promise<ApiToken & { secret: string }> {
    const name = parseName(nameInput, 'name');
    const secret = fixedSecret ?? TOKEN_PREFIX + b64url(this.random.bytes(32));
    const token: ApiToken = {
      id: `tok_${b64url(this.random.bytes(12))}`,
      ownerId,
      name,
      createdAt: this.clock.now().toISOString(),
      lastUsedAt: null,
    };
    await this.store.insertToken(token, hashToken(secret));
    return { ...token, secret };
  }

  /** Resolves a bearer token to its owner, or throws `unauthenticated` saying as little as possible. */
  async authenticate(token: string | undefined): Promise<Owner> {
    if (!token || !API_TOKEN_FORMAT.test(token)) throw new OwnerError('unauthenticated', 'a valid API token is required');
    const found = await this.store.findOwnerByTokenHash(hashToken(token));
    if (!found) throw new OwnerError('unauthenticated', 'a valid API token is required');
    const now = this.clock.now();
    const staleBefore = new Date(now.getTime() - TOKEN_TOUCH_PERIOD_MS).toISOString();
    if (found.lastUsedAt === null || found.lastUsedAt < staleBefore) await this.store.touchToken(found.tokenId, now.toISOString(), staleBefore);
    return found.owner;
  }

  /**
   * The owner of the API token whose SHA-256 is `tokenHash`, if that token still exists: a console
   * session keeps the hash of the token it was opened with, so revoking the token ends the session.
   */
  async ownerOfTokenHash(tokenHash: string): Promise<Owner | undefined> {
    return (await this.store.findOwnerByTokenHash(tokenHash))?.owner;
  }

  /** Whether `token` is a current API token of an admin (a bootstrap token already in effect). */
  async isAdminToken(token: string): Promise<boolean> {
    if (!API_TOKEN_FORMAT.test(token)) return false;
    return (await this.store.findOwnerByTokenHash(hashToken(token)))?.owner.isAdmin === true;
  }

  listTokens(owner: Owner, window?: KeysetWindow): Promise<ApiToken[]> {
    return this.store.listTokens(owner.id, window);
  }

  async revokeToken(owner: Owner, tokenId: string): Promise<void> {
    if (!(await this.store.deleteToken(owner.id, tokenId))) {
      throw new OwnerError('token_not_found', `no token ${tokenId}`, 'tokenId');
    }
  }
}
