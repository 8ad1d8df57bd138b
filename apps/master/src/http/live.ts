import { PassThrough } from 'node:stream';
import { Type } from '@sinclair/typebox';
import { InvalidValueError } from '@tips/core';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Gauge, type Registry } from 'prom-client';
import { binary } from './openapi-responses.ts';
import { errorResponses } from './schemas.ts';

/** One change an owner's console should react to (the console then refetches what it shows). */
export interface LiveEvent {
  /**
   * `table`: a gateway reported its interface table (T11); `registration`: TIPS-D decided on a joining
   * interface (T5–T9); `write`: the owner changed something through /api/v1; `provisioning`: a Phase 1
   * job moved through its gateway (boot script, work, report: T13); `metal`: a metal reported
   * (install report, tamper report, profile: T14–T16).
   */
  kind: 'table' | 'registration' | 'write' | 'provisioning' | 'metal';
  /** For `write`: the collection changed (`metals`, `spaces`, `glazes`, `gateways`, …); for `metal`: what the metal sent (`reports`, `tamper`, `profile`). */
  resource?: string;
  gatewayId?: string;
  at: string;
}

const DEFAULT_STREAM_SECONDS = 900;
const MAX_STREAM_SECONDS = 3600;
const HEARTBEAT_MS = 15_000;
/** Tells EventSource how long to wait before it reconnects after the stream ends (ms). */
const RETRY_MS = 2000;

/**
 * The live feed behind the console (D6, T11): successful writes are observed after the answer —
 * owner writes under /api/v1, gateway table reports and registration decisions under
 * /api/gateway/v1 — and announced to that owner's open event streams. Observing answers (an
 * `onResponse` hook) keeps the feed out of every domain's code path: nothing is announced that did
 * not commit, and a slow stream never holds a request. One process's streams hear that process's
 * requests; a replica's writes reach a console connected to another replica at its next refetch.
 */
export class LiveFeed {
  private readonly streams = new Map<string, Set<(e: LiveEvent) => void>>();
  private readonly gauge: Gauge | undefined;
  /** Ends every open stream (the master is closing: it must not wait for browsers to hang up). */
  readonly enders = new Set<() => void>();

  constructor(metrics?: Registry) {
    this.gauge = metrics && new Gauge({ name: 'tips_master_live_streams', help: 'open console event streams (GET /api/v1/events)', registers: [metrics] });
  }

  publish(ownerId: string, e: LiveEvent): void {
    for (const s of this.streams.get(ownerId) ?? []) s(e);
  }

  subscribe(ownerId: string, s: (e: LiveEvent) => void): () => void {
    const set = this.streams.get(ownerId) ?? new Set();
    set.add(s);
    this.streams.set(ownerId, set);
    this.gauge?.inc();
    return () => {
      set.delete(s);
      if (set.size === 0) this.streams.delete(ownerId);
      this.gauge?.dec();
    };
  }

  /** Watches answers for the changes the feed announces. */
  install(app: FastifyInstance): void {
    app.addHook('preClose', async () => {
      for (const end of [...this.enders]) end();
    });
    // Callback style: an async hook costs every answer a promise and a microtask turn.
    app.addHook('onResponse', (req, reply, done) => {
      try {
        this.watch(req, reply);
      } catch (e) {
        done(e as Error);
        return;
      }
      done();
    });
  }

  private watch(req: FastifyRequest, reply: FastifyReply): void {
    if (reply.statusCode >= 300) return;
    const route = req.routeOptions.url ?? '';
    const gateway = (req as FastifyRequest & { gateway?: { id: string; ownerId: string } | null }).gateway;
    // The Phase 1 boot script is a GET that moves the job (queued → booting).
    if (route.startsWith('/api/gateway/v1/provisioning/') && gateway) {
      this.publish(gateway.ownerId, { kind: 'provisioning', gatewayId: gateway.id, at: new Date().toISOString() });
      return;
    }
    // Reads change nothing (and are most requests: no clock read for them).
    if (req.method === 'GET' || req.method === 'HEAD') return;
    const at = new Date().toISOString();
    const metal = (req as FastifyRequest & { metal?: { ownerId: string } | null }).metal;
    if (route.startsWith('/api/metal/v1/') && metal) this.publish(metal.ownerId, { kind: 'metal', resource: route.split('/')[4] ?? '', at });
    else if (route === '/api/gateway/v1/table' && gateway) this.publish(gateway.ownerId, { kind: 'table', gatewayId: gateway.id, at });
    else if (route.startsWith('/api/gateway/v1/registrations') && gateway) this.publish(gateway.ownerId, { kind: 'registration', gatewayId: gateway.id, at });
    else if (route.startsWith('/api/v1/') && req.owner) this.publish(req.owner.id, { kind: 'write', resource: route.split('/')[3] ?? '', at });
  }
}

/** `GET /events` inside the authenticated /api/v1 scope: Server-Sent Events for the caller. */
export function liveRoutes(app: FastifyInstance, feed: LiveFeed): void {
  app.get<{ Querystring: { seconds?: string } }>(
    '/events',
    {
      schema: {
        tags: ['live'],
        summary: "Server-Sent Events: what changed in the caller's fleet, as it happens (the console's live updates)",
        description:
          'text/event-stream. First `retry:` and an `event: ready`; then one `event: change` per change, `data:` a JSON object {kind: "table" | "registration" | "write" | "provisioning" | "metal", resource?, gatewayId?, at}. ' +
          'A comment line every 15 s keeps proxies from closing the stream. The stream ends after `seconds`; EventSource reconnects by itself. Changes made through another master replica are not announced here.',
        querystring: Type.Object(
          { seconds: Type.Optional(Type.String({ maxLength: 4, pattern: '^[0-9]+$', description: `how long the stream stays open, 0–${MAX_STREAM_SECONDS} (default ${DEFAULT_STREAM_SECONDS})` })) },
          { additionalProperties: false },
        ),
        response: { 200: binary('text/event-stream', 'the event stream'), ...errorResponses(400) },
      },
    },
    async (req, reply) => {
      const seconds = req.query.seconds === undefined ? DEFAULT_STREAM_SECONDS : Number(req.query.seconds);
      if (seconds > MAX_STREAM_SECONDS) throw new InvalidValueError('querystring.seconds', `must be at most ${MAX_STREAM_SECONDS}`);
      const out = new PassThrough();
      out.write(`retry: ${RETRY_MS}\nevent: ready\ndata: {}\n\n`);
      let n = 0;
      const unsubscribe = feed.subscribe(req.owner.id, (e) => out.write(`id: ${++n}\nevent: change\ndata: ${JSON.stringify(e)}\n\n`));
      const heartbeat = setInterval(() => out.write(': keep-alive\n\n'), HEARTBEAT_MS);
      let ended = false;
      const end = () => {
        if (ended) return;
        ended = true;
        clearInterval(heartbeat);
        clearTimeout(timer);
        unsubscribe();
        feed.enders.delete(end);
        out.end();
      };
      const timer = setTimeout(end, seconds * 1000);
      feed.enders.add(end);
      // The browser went away (its connection closed): stop writing to it.
      reply.raw.once('close', end);
      if (seconds === 0) end();
      return reply.header('content-type', 'text/event-stream; charset=utf-8').header('cache-control', 'no-store').header('x-accel-buffering', 'no').send(out);
    },
  );
}
