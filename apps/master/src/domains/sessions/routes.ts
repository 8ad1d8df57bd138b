import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import { registerStatusTable } from '../../http/errors.ts';
import { noContent } from '../../http/openapi-responses.ts';
import { errorResponses } from '../../http/schemas.ts';
import type { Owner } from '../owners/model.ts';
import type { SessionErrorCode } from './errors.ts';
import { type ConsoleSession, CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE } from './model.ts';
import type { SessionService } from './service.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The console session that authenticated this request; null when a bearer token did. */
    consoleSession: ConsoleSession | null;
  }
}

registerStatusTable<SessionErrorCode>('sessions', {
  unauthenticated: 401,
  csrf_failed: 403,
});

/** The value of one cookie of the request (the first, if sent twice), or undefined. */
export function cookieOf(req: FastifyRequest, name: string): string | undefined {
  const header = req.headers.cookie;
  if (typeof header !== 'string') return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

const header = (req: FastifyRequest, name: string): string | undefined => {
  const v = req.headers[name];
  return typeof v === 'string' ? v : undefined;
};

/**
 * The /api/v1 scope's authentication: a bearer token when one is sent (the CLI, scripts), else the
 * console's session cookie (with the CSRF checks on writes). Sets `req.consoleSession`.
 */
export async function authenticateOwner(req: FastifyRequest, sessions: SessionService, bearer: (token: string | undefined) => Promise<Owner>, token: string | undefined): Promise<Owner> {
  const secret = cookieOf(req, SESSION_COOKIE);
  if (token !== undefined || secret === undefined) {
    req.consoleSession = null;
    return bearer(token);
  }
  const { owner, session } = await sessions.authenticate({
    method: req.method,
    secret,
    csrfHeader: header(req, CSRF_HEADER),
    origin: header(req, 'origin'),
    fetchSite: header(req, 'sec-fetch-site'),
    selfHost: req.host,
  });
  req.consoleSession = session;
  return owner;
}

function setCookies(req: FastifyRequest, reply: FastifyReply, values: { session: string; csrf: string; maxAge: number }): void {
  const secure = req.protocol === 'https' ? '; Secure' : '';
  const attrs = `; Path=/; SameSite=Strict; Max-Age=${values.maxAge}${secure}`;
  reply.header('set-cookie', [`${SESSION_COOKIE}=${values.session}${attrs}; HttpOnly`, `${CSRF_COOKIE}=${values.csrf}${attrs}`]);
  reply.header('cache-control', 'no-store');
}

const OwnerOut = Type.Object({ id: Type.String(), name: Type.String(), isAdmin: Type.Boolean(), createdAt: Type.String() });
const SessionOut = Type.Object({
  owner: OwnerOut,
  csrfToken: Type.String({ description: `echo it in ${CSRF_HEADER} on every write made with the session cookie (it is also the ${CSRF_COOKIE} cookie)` }),
  expiresAt: Type.String({ description: 'when the session ends; sign in again after' }),
});
const ownerOut = (o: Owner) => ({ id: o.id, name: o.name, isAdmin: o.isAdmin, createdAt: o.createdAt });

/** Sign-in: outside the authenticated scope (the token comes in the body). Mount under /api/v1. */
export function sessionSignInRoutes(app: FastifyInstance, sessions: SessionService): void {
  app.post<{ Body: { token: string } }>(
    '/session',
    {
      schema: {
        tags: ['sessions'],
        summary: 'Console sign-in: exchange an API token for a session cookie (HttpOnly, SameSite=Strict) and a CSRF token',
        description: `Sets ${SESSION_COOKIE} (HttpOnly) and ${CSRF_COOKIE} (readable by the page). With the cookie, /api/v1 accepts requests without a bearer token; writes must send ${CSRF_HEADER} and come from this origin. The token is checked exactly as a bearer token is, and is never stored.`,
        body: Type.Object({ token: Type.String({ maxLength: 160, description: 'an owner API token (tips_…)' }) }, { additionalProperties: false }),
        response: { 201: SessionOut, ...errorResponses(400, 401) },
      },
    },
    async (req, reply) => {
      // Logged without the token or the session secret: the owner and the outcome only.
      const { owner, secret, session } = await sessions.signIn(req.body.token).catch((e: unknown) => {
        req.log.warn({ event: 'session', code: 'sign_in_refused' }, 'console sign-in refused');
        throw e;
      });
      req.log.info({ event: 'session', code: 'signed_in', owner: owner.id, expiresAt: session.expiresAt }, 'console sign-in');
      setCookies(req, reply, { session: secret, csrf: session.csrfToken, maxAge: sessions.ttlSeconds });
      return reply.code(201).send({ owner: ownerOut(owner), csrfToken: session.csrfToken, expiresAt: session.expiresAt });
    },
  );
}

/** The session itself, inside the authenticated /api/v1 scope. */
export function sessionRoutes(app: FastifyInstance, sessions: SessionService): void {
  app.get(
    '/session',
    {
      schema: {
        tags: ['sessions'],
        summary: 'Who is signed in: the owner, and the console session with its CSRF token (null fields when a bearer token authenticated the request)',
        response: {
          200: Type.Object({ owner: OwnerOut, csrfToken: Type.Union([Type.String(), Type.Null()]), expiresAt: Type.Union([Type.String(), Type.Null()]) }),
        },
      },
    },
    async (req, reply) => {
      reply.header('cache-control', 'no-store');
      return { owner: ownerOut(req.owner), csrfToken: req.consoleSession?.csrfToken ?? null, expiresAt: req.consoleSession?.expiresAt ?? null };
    },
  );

  app.delete(
    '/session',
    {
      schema: {
        tags: ['sessions'],
        summary: 'Sign out: the session is deleted (its cookie is refused from now on) and both cookies are cleared; with a bearer token there is no session and nothing changes',
        response: { 204: noContent('Signed out') },
      },
    },
    async (req, reply) => {
      await sessions.signOut(cookieOf(req, SESSION_COOKIE));
      if (req.consoleSession) req.log.info({ event: 'session', code: 'signed_out', owner: req.owner.id }, 'console sign-out');
      setCookies(req, reply, { session: '', csrf: '', maxAge: 0 });
      return reply.code(204).send();
    },
  );
}

/** `tips_master_console_sessions_total{event}`: sign-ins made and refused, sessions expired and ended. */
export function installSessionMetrics(registry: Registry, sessions: SessionService): void {
  const c = new Counter({
    name: 'tips_master_console_sessions_total',
    help: 'Console sessions by event: created (sign-in), failed (sign-in refused), expired (found or swept after their lifetime), ended (sign-out)',
    labelNames: ['event'] as const,
    registers: [registry],
  });
  for (const e of ['created', 'failed', 'expired', 'ended'] as const) c.inc({ event: e }, 0);
  sessions.useMetrics((event, n = 1) => c.inc({ event }, n));
}
