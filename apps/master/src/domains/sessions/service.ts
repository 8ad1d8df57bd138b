import { createHash, timingSafeEqual } from 'node:crypto';
import type { Owner } from '../owners/model.ts';
import { hashToken, type OwnerService } from '../owners/service.ts';
import type { Clock, Random } from '../../ports.ts';
import { SessionError } from './errors.ts';
import { type ConsoleSession, DEFAULT_SESSION_TTL_SECONDS } from './model.ts';
import type { SessionStore } from './store.ts';

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
const b64url = (b: Uint8Array) => Buffer.from(b).toString('base64url');
/** 256-bit secrets, base64url: what the cookies carry. */
const SECRET_FORMAT = /^[A-Za-z0-9_-]{43}$/;

/** What a request shows for cookie authentication (the routes read the headers, the service decides). */
export interface CookieRequest {
  method: string;
  /** The session secret from the `tips_session` cookie. */
  secret: string;
  /** X-Tips-Csrf as sent. */
  csrfHeader: string | undefined;
  /** Origin as sent (browsers send it on every cross-origin request and on same-origin writes). */
  origin: string | undefined;
  /** Sec-Fetch-Site as sent, when Origin is absent. */
  fetchSite: string | undefined;
  /** This master's host as the request reached it (the Host header: name[:port]). */
  selfHost: string;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export type SessionEvent = 'created' | 'failed' | 'expired' | 'ended';

/**
 * Console sign-in (D6): an owner API token is exchanged for a session whose secret travels only in
 * an HttpOnly, SameSite=Strict cookie. Sessions live in the database (any replica can check them),
 * expire after a fixed lifetime, end at sign-out and when the API token they came from is revoked.
 * Cookie-authenticated writes need the session's CSRF token echoed in a header (the page reads it
 * from a second cookie: a double submit) and, when the browser states one, this master's Origin.
 */
export class SessionService {
  constructor(
    private readonly store: SessionStore,
    private readonly owners: OwnerService,
    private readonly clock: Clock,
    private readonly random: Random,
    readonly ttlSeconds: number = DEFAULT_SESSION_TTL_SECONDS,
  ) {}

  private count: (event: SessionEvent, n?: number) => void = () => undefined;

  /** Counts sign-ins made and refused, sessions found expired (or swept) and ended by sign-out. */
  useMetrics(count: (event: SessionEvent, n?: number) => void): void {
    this.count = count;
  }

  /** Checks the API token as a bearer request would, then opens a session. */
  async signIn(token: string): Promise<{ owner: Owner; secret: string; session: ConsoleSession }> {
    let owner: Owner;
    try {
      owner = await this.owners.authenticate(token);
    } catch (e) {
      this.count('failed');
      throw e;
    }
    const now = this.clock.now();
    const swept = await this.store.sweep(now.toISOString());
    if (swept > 0) this.count('expired', swept);
    const secret = b64url(this.random.bytes(32));
    const session: ConsoleSession = {
      idHash: sha256(secret),
      ownerId: owner.id,
      tokenHash: hashToken(token),
      csrfToken: b64url(this.random.bytes(32)),
      createdAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + this.ttlSeconds * 1000).toISOString(),
    };
    await this.store.insert(session);
    this.count('created');
    return { owner, secret, session };
  }

  /** The owner and session a cookie names; writes must also pass the CSRF checks. Says little on failure. */
  async authenticate(req: CookieRequest): Promise<{ owner: Owner; session: ConsoleSession }> {
    const refused = () => new SessionError('unauthenticated', 'a valid API token or console session is required');
    if (!SECRET_FORMAT.test(req.secret)) throw refused();
    const session = await this.store.find(sha256(req.secret), this.clock.now().toISOString());
    if (!session) {
      // A row under this hash that `find` did not return has expired: remove it now, and count it.
      if (await this.store.delete(sha256(req.secret))) this.count('expired');
      throw refused();
    }
    const owner = await this.owners.ownerOfTokenHash(session.tokenHash);
    if (!owner || owner.id !== session.ownerId) {
      await this.store.delete(session.idHash);
      throw refused();
    }
    if (!SAFE_METHODS.has(req.method.toUpperCase())) checkCsrf(req, session);
    return { owner, session };
  }

  /** Ends the session a cookie names (nothing to do when it names none). */
  async signOut(secret: string | undefined): Promise<void> {
    if (secret !== undefined && SECRET_FORMAT.test(secret) && (await this.store.delete(sha256(secret)))) this.count('ended');
  }
}

function checkCsrf(req: CookieRequest, session: ConsoleSession): void {
  // Origin first: a page of another origin can never make the browser send this master's. The host
  // is compared, not the scheme, so a master behind a TLS-terminating proxy (it sees http, the
  // browser says https) still accepts its own page; the port is part of the host.
  if (req.origin !== undefined) {
    if (hostKey(req.origin) !== hostKey(`http://${req.selfHost}`)) throw new SessionError('csrf_failed', `a cookie-authenticated write must come from this master's own page (${req.selfHost}), not ${req.origin.slice(0, 100)}`);
  } else if (req.fetchSite !== undefined && req.fetchSite !== 'same-origin') {
    throw new SessionError('csrf_failed', 'a cookie-authenticated write must come from this origin');
  }
  const given = Buffer.from(req.csrfHeader ?? '', 'utf8');
  const expected = Buffer.from(session.csrfToken, 'utf8');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new SessionError('csrf_failed', 'a cookie-authenticated write needs the X-Tips-Csrf header (the tips_csrf cookie\'s value)', 'x-tips-csrf');
  }
}

/** name and port of a URL's host, the default ports (80, 443) left out so `host` and `host:80` agree. */
function hostKey(url: string): string | undefined {
  try {
    const u = new URL(url);
    const port = u.port === '80' || u.port === '443' ? '' : u.port;
    return `${u.hostname}:${port}`;
  } catch {
    return undefined;
  }
}
