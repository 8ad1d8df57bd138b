import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { errorBody, MAX_PARAM_LENGTH } from './edge.ts';

/** Paths that belong to the API and the service pages; the console never answers them. */
const RESERVED = ['/api/', '/docs', '/openapi.json', '/metrics', '/healthz', '/readyz', '/.well-known/'];

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
};

interface File {
  body: Buffer;
  type: string;
  etag: string;
  /** Vite names files under assets/ by their content hash: they never change, so caches keep them. */
  immutable: boolean;
}

// The console talks only to this origin; nothing of it may be framed by another site.
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
  'x-frame-options': 'DENY',
};

/** Reads the built console (dist/web) into memory: a few hundred KiB, served without disk reads. */
function load(dir: string): Map<string, File> {
  const files = new Map<string, File>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else {
        const body = readFileSync(p);
        const url = `/${relative(dir, p).split(sep).join('/')}`;
        files.set(url, {
          body,
          type: TYPES[extname(p)] ?? 'application/octet-stream',
          etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
          immutable: url.startsWith('/assets/'),
        });
      }
    }
  };
  walk(dir);
  return files;
}

/**
 * The web console (apps/web, built into `dir` by scripts/build.mjs) at `/`: static files with cache
 * headers (hashed assets for a year, index.html revalidated every time), and the single-page app's
 * index for any other page path, so a deep link (`/metals/mtl_…`) reloads. API paths keep their 404.
 */
export function installConsole(app: FastifyInstance, dir: string | undefined): void {
  const files = dir !== undefined && existsSync(join(dir, 'index.html')) ? load(dir) : undefined;
  const serve = (req: FastifyRequest, reply: FastifyReply) => {
    const path = req.url.split('?')[0] ?? '/';
    if (RESERVED.some((p) => path === p.replace(/\/$/, '') || path.startsWith(p))) {
      // This catch-all matched only because no API route did: answer as the router would have.
      if (path.split('/').some((seg) => seg.length > MAX_PARAM_LENGTH)) {
        return reply.code(414).send(errorBody(String(req.id), 'uri_too_long', `a path segment is longer than ${MAX_PARAM_LENGTH} characters`));
      }
      return reply.callNotFound();
    }
    if (!files) {
      if (path !== '/') return reply.callNotFound();
      return reply
        .code(503)
        .type('text/plain; charset=utf-8')
        .send('The web console is not built. Run `npm run build` (npm install does it), then restart tips-master.\n');
    }
    let file = files.get(path);
    if (!file) {
      // An asset that is not there is a 404 (a stale page asking for an old chunk), not the index.
      if (path.startsWith('/assets/') || extname(path) !== '') return reply.callNotFound();
      file = files.get('/index.html')!;
    }
    reply.headers(SECURITY_HEADERS);
    reply.header('etag', file.etag);
    reply.header('cache-control', file.immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
    if (req.headers['if-none-match'] === file.etag) return reply.code(304).send();
    return reply.type(file.type).send(file.body);
  };
  app.get('/', { schema: { hide: true } }, serve);
  app.get('/*', { schema: { hide: true } }, serve);
}
