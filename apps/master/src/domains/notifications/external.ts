import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyPair, issueCertificate, privateKeyToPem, serialFrom } from '@tips/trust';
import mqtt from 'mqtt';
import type { Random } from '../../ports.ts';
import { caPem, issueServerCertificate, type MasterCa } from '../enrollment/ca.ts';
import { writeFileAtomic } from '../enrollment/ca-dir.ts';
import type { NotificationBus } from './model.ts';

/** The name the master's MQTT client certificate carries (CN): the ACL's publishing user. */
export const MASTER_MQTT_USER = 'tips-master';

/**
 * A client certificate for the master itself (CN tips-master), made at every start: with
 * Mosquitto's `use_identity_as_username` it is the one user the ACL lets publish.
 */
export async function masterClientCertificate(ca: MasterCa, now: Date, random: Random): Promise<{ certPem: string; keyPem: string }> {
  const keys = await generateKeyPair();
  const cert = await issueCertificate(ca.intermediate, {
    identity: { kind: 'master', id: '' },
    publicKey: keys.publicKey,
    serial: serialFrom(random.bytes(16)),
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + 90 * 86_400_000),
    usage: 'client',
    dnsNames: [MASTER_MQTT_USER],
  });
  return { certPem: `${cert.toString('pem')}\n${caPem(ca).intermediatePem}`, keyPem: await privateKeyToPem(keys.privateKey) };
}

/** The ACL an external Mosquitto needs: metals read only their own topic (CN = TIPS ID), only the master writes. */
export function mosquittoAcl(): string {
  return [
    '# Written by tips-master. Mosquitto: require_certificate true, use_identity_as_username true (username = certificate CN).',
    '# A metal (CN = its TIPS ID) may only read its own topic; only the master (CN tips-master) may publish.',
    `user ${MASTER_MQTT_USER}`,
    'topic write tips/metal/#',
    '',
    'pattern read tips/metal/%u',
    '',
  ].join('\n');
}

/**
 * Everything an external Mosquitto needs to serve TIPS, written into `dir` (temp + fsync + rename):
 * the CA chain that verifies metal certificates, a server certificate for the broker's host name,
 * the ACL, and a mosquitto.conf fragment naming them.
 */
export async function writeMosquittoFiles(dir: string, ca: MasterCa, broker: { host: string; port: number }, now: Date, random: Random): Promise<string> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const pems = caPem(ca);
  const ip = /^[\d.]+$|:/.test(broker.host);
  const server = await issueServerCertificate(ca, { now, random, dnsNames: ip ? [] : [broker.host], ipAddresses: ip ? [broker.host.replace(/^\[|\]$/g, '')] : [] });
  writeFileAtomic(join(dir, 'ca.pem'), pems.rootPem + pems.intermediatePem);
  writeFileAtomic(join(dir, 'server.pem'), server.chainPem);
  writeFileAtomic(join(dir, 'server-key.pem'), server.keyPem, 0o600);
  writeFileAtomic(join(dir, 'acl'), mosquittoAcl());
  const conf = [
    '# Written by tips-master for an external broker (--mqtt-url). Include it from mosquitto.conf, or run mosquitto -c with it.',
    `listener ${broker.port}`,
    `cafile ${join(dir, 'ca.pem')}`,
    `certfile ${join(dir, 'server.pem')}`,
    `keyfile ${join(dir, 'server-key.pem')}`,
    'require_certificate true',
    'use_identity_as_username true',
    'allow_anonymous false',
    `acl_file ${join(dir, 'acl')}`,
    '',
  ].join('\n');
  writeFileAtomic(join(dir, 'mosquitto.conf'), conf);
  return join(dir, 'mosquitto.conf');
}

/** Publishes to an external broker as an MQTT client with the master's certificate; reconnects by itself. */
export function connectExternalBroker(opts: { url: string; caPem: string; certPem: string; keyPem: string; log: { warn(obj: object, msg: string): void } }): NotificationBus {
  const u = new URL(opts.url);
  const client = mqtt.connect({
    protocol: 'mqtts',
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: Number(u.port),
    ca: opts.caPem,
    cert: opts.certPem,
    key: opts.keyPem,
    rejectUnauthorized: true,
    clientId: `${MASTER_MQTT_USER}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
    reconnectPeriod: 1000,
    connectTimeout: 10_000,
  });
  let lastError = '';
  client.on('error', (err) => {
    if (err.message !== lastError) opts.log.warn({ event: 'mqtt_external_error', err: err.message }, 'external MQTT broker');
    lastError = err.message;
  });
  return {
    url: opts.url,
    // While the broker is away mqtt.js queues the message; the caller is not kept waiting for it.
    publish: (topic, payload) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the external broker did not acknowledge within 10 s (queued for reconnection)')), 10_000);
        client.publish(topic, Buffer.from(payload), { qos: 1 }, (err) => {
          clearTimeout(timer);
          if (err) reject(err);
          else resolve();
        });
      }),
    connectedMetals: () => undefined,
    disconnectMetal: () => undefined,
    close: async () => {
      await client.endAsync(true);
    },
  };
}
