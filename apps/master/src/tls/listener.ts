import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';

export interface TlsListenOptions {
  host: string;
  port: number;
  /** The master's server certificate chain (leaf, then intermediate) and its key, PEM. */
  certPem: string;
  keyPem: string;
  /** CAs a client certificate may chain to (root and intermediate), PEM. */
  clientCaPem: string;
}

/**
 * Serves the same Fastify app over HTTPS as well: one set of routes and hooks, two listeners.
 * Client certificates are requested but not required at the handshake — each API scope decides
 * (the owner API ignores them, the metal API requires one, EST simplereenroll requires one).
 */
export async function listenTls(app: FastifyInstance, opts: TlsListenOptions): Promise<{ server: Server; port: number; url: string; close(): Promise<void> }> {
  await app.ready();
  const server = createServer(
    {
      cert: opts.certPem,
      key: opts.keyPem,
      ca: opts.clientCaPem,
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
    },
    (req, res) => app.routing(req, res),
  );
  // WebSocket upgrades (the gateway channel) go through the same routes and hooks as over HTTP.
  server.on('upgrade', (req, socket, head) => app.server.emit('upgrade', req, socket, head));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  const close = async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  };
  return { server, port, url: `https://${host}:${port}`, close };
}
