import { createServer, type Server, TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { Aedes, type AuthenticateError, type Client } from 'aedes';
import type { NotificationBus } from './model.ts';
import { metalTopic } from './service.ts';

export interface EmbeddedBrokerOptions {
  host: string;
  port: number;
  /** The host name metals connect to (in the mqtts:// URL `GET /work` gives them). */
  publicHost: string;
  /** The master's TLS server certificate chain and key; client certificates must chain to clientCaPem. */
  certPem: string;
  keyPem: string;
  clientCaPem: string;
  /** The metal a client certificate names — only an active certificate this master issued, of a metal not blocked. */
  authenticateMetal(peer: { authorized: boolean; der: Uint8Array }): Promise<{ metalId: string }>;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

const NOT_AUTHORIZED = 5;

/**
 * The embedded MQTT broker (T15, S9, S10): aedes behind a TLS server that demands a client
 * certificate from the master's CA. The certificate is the identity: a metal may subscribe only
 * to `tips/metal/<its TIPS ID>`; no client may publish — only the master does, in-process.
 */
export async function startEmbeddedBroker(opts: EmbeddedBrokerOptions): Promise<NotificationBus & { port: number; server: Server }> {
  const metalOf = new WeakMap<Client, string>();
  const connected = new Set<Client>();
  const refuse = (client: Client | null, code: string, detail: Record<string, unknown> = {}) =>
    opts.log.warn({ event: 'security', code, mqttClient: client?.id, metal: client ? metalOf.get(client) : undefined, ...detail }, 'mqtt refused');

  const broker = await Aedes.createBroker({
    authenticate(client, _username, _password, done) {
      const socket = client.conn;
      const cert = socket instanceof TLSSocket ? socket.getPeerCertificate() : undefined;
      const fail = (code: string) => {
        refuse(client, code);
        const err = new Error('not authorized') as AuthenticateError;
        err.returnCode = NOT_AUTHORIZED;
        done(err, false);
      };
      if (!(socket instanceof TLSSocket) || !cert?.raw) return fail('mqtt_certificate_required');
      opts
        .authenticateMetal({ authorized: socket.authorized, der: new Uint8Array(cert.raw) })
        .then((m) => {
          metalOf.set(client, m.metalId);
          done(null, true);
        })
        .catch((e: { code?: string }) => fail(e.code ?? 'mqtt_certificate_invalid'));
    },
    authorizeSubscribe(client, sub, done) {
      const metal = metalOf.get(client);
      if (metal !== undefined && sub.topic === metalTopic(metal)) return done(null, sub);
      refuse(client, 'mqtt_subscribe_denied', { topic: sub.topic.slice(0, 200) });
      // A null subscription is refused in the SUBACK (0x80) and the connection stays up.
      done(null, null);
    },
    authorizePublish(client, packet, done) {
      // The master publishes in-process (client null); metals only listen.
      if (client === null) return done(null);
      refuse(client, 'mqtt_publish_denied', { topic: packet.topic.slice(0, 200) });
      done(new Error('publishing is not allowed'));
    },
  });
  broker.on('clientReady', (c) => connected.add(c));
  broker.on('clientDisconnect', (c) => connected.delete(c));

  const server = createServer(
    { cert: opts.certPem, key: opts.keyPem, ca: opts.clientCaPem, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' },
    (socket) => broker.handle(socket),
  );
  // A refused handshake (no or a foreign certificate) is not a crash.
  server.on('tlsClientError', (err) => opts.log.warn({ event: 'security', code: 'mqtt_tls_refused', err: err.message }, 'mqtt TLS handshake refused'));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = opts.publicHost.includes(':') ? `[${opts.publicHost}]` : opts.publicHost;
  return {
    port,
    server,
    url: `mqtts://${host}:${port}`,
    publish: (topic, payload) =>
      new Promise<void>((resolve, reject) =>
        broker.publish({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: 1, retain: false, dup: false }, (err) => (err ? reject(err) : resolve())),
      ),
    connectedMetals: () => connected.size,
    disconnect: (metalId) => {
      let n = 0;
      for (const c of connected) {
        if (metalOf.get(c) !== metalId) continue;
        c.close();
        n++;
      }
      return n;
    },
    close: async () => {
      for (const c of connected) c.close();
      await new Promise<void>((r) => server.close(() => r()));
      await new Promise<void>((r) => broker.close(() => r()));
    },
  };
}
