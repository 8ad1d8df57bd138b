import type { FastifyInstance, FastifyReply, FastifySchema, RouteOptions } from 'fastify';
import type { OpenAPIV3 } from 'openapi-types';
import { ErrorSchema } from './errors.ts';

declare module 'fastify' {
  interface FastifySchema {
    /**
     * A request body that is not JSON (an image, a SUIT envelope, a PKCS#10), by media type. Only
     * documented: the handler reads and checks it, so Fastify must not validate it as a `body`.
     */
    requestBody?: Record<string, { schema: Record<string, unknown> }>;
  }
}

/**
 * The OpenAPI document states every answer a route can give. The statuses that come from the
 * framework, the edge or a scope's authentication (not from the route's own handler) are added
 * here, by `onRoute` hooks, so a route added later is documented without anyone remembering to:
 *
 * - every route: 400 (a malformed URL, query or body; a field that fails validation) and 500;
 * - a route with path parameters: 404 (no such object) and 414 (a parameter over the router's limit);
 * - a method that may carry a body (POST, PUT, PATCH, DELETE): 413 (too large) and 415 (a media
 *   type the route does not take);
 * - a scope's authentication (`documentScope`): its security requirement and refusals (401, 403).
 *
 * A route's own successes and domain errors (409, 422, 429 …) stay in its `response:` schema.
 * Every error body is the one shape of `ErrorSchema`, as application/json.
 */

/** Security schemes of the three audiences and of EST, named by the routes' `security`. */
export const SECURITY_SCHEMES = {
  ownerToken: { type: 'http', scheme: 'bearer', description: 'an owner API token (tips_…)' },
  consoleSession: {
    type: 'apiKey',
    in: 'cookie',
    name: 'tips_session',
    description: 'the web console: the session cookie POST /api/v1/session sets; writes also need X-Tips-Csrf (the tips_csrf cookie) and this Origin',
  },
  gatewaySignature: {
    type: 'apiKey',
    in: 'header',
    name: 'x-tips-signature',
    description:
      'TIPS-GW-1 request signature: the gateway signs "TIPS-GW-1\\n<method>\\n<path?query>\\n<timestamp>\\n<nonce>\\n<sha256(body) hex>" with its Ed25519 key and sends x-tips-gateway, x-tips-timestamp, x-tips-nonce and x-tips-signature (base64url); over TLS it also presents the certificate issued at enrollment',
  },
  gatewayCertificate: {
    type: 'mutualTLS',
    description: 'the gateway client certificate issued at enrollment: on the registration routes, over TLS, it alone authenticates the gateway (no TIPS-GW-1 headers; checked once per connection and again each second)',
  },
  metalCertificate: { type: 'mutualTLS', description: 'the metal client certificate the master CA issued by EST (S6)' },
  estSecret: { type: 'http', scheme: 'basic', description: 'EST enrollment: HTTP Basic with the enrollment secret ID and the secret' },
} as const;

/** For @fastify/swagger, whose option types are OpenAPI 3.0's (no `mutualTLS`, which 3.1 added). */
export const securitySchemes = SECURITY_SCHEMES as unknown as Record<string, OpenAPIV3.SecuritySchemeObject>;

export type SecurityRequirement = Partial<Record<keyof typeof SECURITY_SCHEMES, string[]>>;

const DESCRIPTIONS: Record<number, string> = {
  400: 'Bad request: a malformed URL, query or body, or a field that fails validation (error.field names it)',
  401: 'Not authenticated: missing or invalid credentials',
  403: 'Forbidden: authenticated, but not allowed to do this',
  404: 'No such object for this owner (an ID or a name)',
  409: 'Conflict with the current state (a name taken, an object in use)',
  413: 'The request body is larger than this route takes',
  414: 'A path parameter is longer than the router takes',
  415: 'The request body has a media type this route does not take',
  416: 'The requested range is outside the content',
  422: 'Well-formed, but refused by the rules of the domain',
  429: 'Too many refused attempts from this client; wait and retry',
  500: 'Internal error; quote the request id when reporting it',
};

/** An error response as OpenAPI should show it: the one error shape, always application/json. */
export function errorResponse(status: number, description = DESCRIPTIONS[status] ?? 'Error') {
  return { description, content: { 'application/json': { schema: ErrorSchema } } };
}

/** A non-JSON request body of `mediaType`, for `schema.requestBody`. */
export function bytesBody(mediaType: string, description: string, schema: Record<string, unknown> = {}) {
  return { [mediaType]: { schema: { type: 'string', contentMediaType: mediaType, description, ...schema } } };
}

/** @fastify/swagger `transform`: a route's `requestBody` becomes the documented body (never a validated one). */
export function documentRequestBodies({ schema, url }: { schema: FastifySchema; url: string }): { schema: FastifySchema; url: string } {
  if (!schema?.requestBody) return { schema, url };
  const { requestBody, ...rest } = schema;
  return { schema: { ...rest, body: { content: requestBody } }, url };
}

/** A response without a body (204, 304). */
export const noContent = (description: string) => ({ type: 'null', description }) as const;

/** A body that is bytes of `mediaType` (a download, an EST answer), not JSON. */
export function binary(mediaType: string, description: string, schema: Record<string, unknown> = {}) {
  return { description, content: { [mediaType]: { schema: { type: 'string', contentMediaType: mediaType, ...schema } } } };
}

/**
 * A stream of JSON lines (application/x-ndjson): each line one JSON value of `item`. OpenAPI 3.1
 * has no word for a sequence, so the line schema travels as `x-itemSchema` (OpenAPI 3.2's `itemSchema`).
 */
export function jsonLines(item: object, description = 'one JSON object per line, each as x-itemSchema describes; empty when nothing matches') {
  return { description, content: { 'application/x-ndjson': { schema: { type: 'string', description }, 'x-itemSchema': item } } };
}

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

type Responses = Record<string, unknown>;

function isHidden(schema: FastifySchema | undefined): boolean {
  return (schema as { hide?: boolean } | undefined)?.hide === true;
}

/**
 * Adds `statuses` to the route's documented responses. A status the route declares itself keeps
 * the route's schema; a bare `ErrorSchema` entry (errorResponses()) gets its description and
 * media type, so it is not shown as the route's success type.
 */
function addErrors(route: RouteOptions, statuses: Iterable<number>, descriptions: Record<number, string> = {}): void {
  route.schema ??= {};
  const schema = route.schema as FastifySchema & { response?: Responses };
  const response: Responses = { ...(schema.response ?? {}) };
  for (const status of statuses) {
    const given = response[status];
    if (given === undefined) response[status] = errorResponse(status, descriptions[status]);
    else if (given === ErrorSchema) response[status] = errorResponse(status);
  }
  schema.response = response;
}

export interface ResponseMismatch {
  method: string;
  url: string;
  status: number;
  /** What the handler sent, and what the route's response schema let through to the client. */
  sent: unknown;
  serialized: unknown;
}

export interface OpenApiResponseOptions {
  /**
   * Called when a route sends a JSON body that its response schema would change (a field the
   * schema does not declare is dropped by the serializer without a word). For tests: it costs a
   * second serialization of every response.
   */
  onResponseMismatch?: (m: ResponseMismatch) => void;
}

const roundTrip = (v: unknown): unknown => JSON.parse(JSON.stringify(v) ?? 'null');

function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.hasOwn(b, k) && sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/** Installs the statuses every route can give; call on the root instance before any route. */
export function documentResponses(app: FastifyInstance, opts: OpenApiResponseOptions = {}): void {
  app.addHook('onRoute', (route) => {
    if (isHidden(route.schema)) return;
    const methods = (Array.isArray(route.method) ? route.method : [route.method]).map((m) => m.toUpperCase());
    const statuses = [400, 500];
    if (/[:*]/.test(route.url)) statuses.push(404, 414);
    if (methods.some((m) => BODY_METHODS.has(m))) statuses.push(413, 415);
    addErrors(route, statuses);
    if (opts.onResponseMismatch) {
      const report = opts.onResponseMismatch;
      // The serializer Fastify uses for an object body: the one for this status and media type, or for this status.
      const serializerOf = (reply: FastifyReply) => {
        const media = String(reply.getHeader('content-type') ?? 'application/json').split(';')[0]!.trim();
        const status = String(reply.statusCode);
        return { media, serialize: reply.getSerializationFunction(status, media) ?? reply.getSerializationFunction(status) };
      };
      const checked = new WeakSet<FastifyReply>();
      const check = async (_req: unknown, reply: FastifyReply, payload: unknown) => {
        const { serialize } = serializerOf(reply);
        if (typeof serialize === 'function' && typeof payload === 'object' && payload !== null && !Buffer.isBuffer(payload)) {
          checked.add(reply);
          const serialized = JSON.parse(serialize(payload as Record<string, unknown>));
          const sent = roundTrip(payload);
          if (!sameJson(sent, serialized)) report({ method: methods.join(','), url: route.url, status: reply.statusCode, sent, serialized });
        }
        return payload;
      };
      // A route that writes its JSON itself (a list page spliced from stored JSON) skips the
      // serializer: its text must be what the serializer would have written from the parsed value.
      const checkWritten = async (_req: unknown, reply: FastifyReply, payload: unknown) => {
        if (checked.has(reply) || (typeof payload !== 'string' && !Buffer.isBuffer(payload))) return payload;
        const { media, serialize } = serializerOf(reply);
        if (media === 'application/json' && typeof serialize === 'function') {
          const sent = JSON.parse(typeof payload === 'string' ? payload : payload.toString('utf8')) as unknown;
          const serialized = JSON.parse(serialize(sent as Record<string, unknown>));
          if (!sameJson(sent, serialized)) report({ method: methods.join(','), url: route.url, status: reply.statusCode, sent, serialized });
        }
        return payload;
      };
      const own = route.preSerialization;
      route.preSerialization = own === undefined ? [check] : [...(Array.isArray(own) ? own : [own]), check];
      const onSend = route.onSend;
      route.onSend = onSend === undefined ? [checkWritten] : [...(Array.isArray(onSend) ? onSend : [onSend]), checkWritten];
    }
  });
}

/**
 * What a scope's authentication means for the routes in it: their security requirement (unless a
 * route states its own) and the refusals the scope's hooks give before any handler runs. Call
 * inside the scope, before its routes.
 */
export function documentScope(scope: FastifyInstance, doc: { security: SecurityRequirement[]; refusals: Record<number, string> }): void {
  scope.addHook('onRoute', (route) => {
    if (isHidden(route.schema)) return;
    route.schema ??= {};
    const schema = route.schema as FastifySchema & { security?: SecurityRequirement[] };
    schema.security ??= doc.security;
    addErrors(route, Object.keys(doc.refusals).map(Number), doc.refusals);
  });
}
