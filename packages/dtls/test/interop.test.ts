/**
 * Interop with DTLS stacks we did not write: OpenSSL (s_client, s_server) and GnuTLS (gnutls-cli), both
 * directions, both suites, and the refusals.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { rmSync } from 'node:fs';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DatagramPeer, type DtlsError, type DtlsServer, createDtlsClient, createDtlsServer } from '../src/index.ts';
import { type TestPki, makeTestPki } from './pki.ts';

const logger = pino({ level: 'silent' });
const PSK_HEX = '5a1e0c7d9b3f48a2b6e1d0c4f7a29e31';
const PSK = Buffer.from(PSK_HEX, 'hex');
const IDENTITY = 'metal-7.1';
let pki: TestPki;
let server: DtlsServer;
let port: number;
const revoked = new Set<string>();
const received: { peer: DatagramPeer; text: string }[] = [];
const children = new Set<ChildProcess>();

beforeAll(async () => {
  pki = await makeTestPki();
  server = await createDtlsServer({
    host: '127.0.0.1',
    port: 0,
    logger,
    psk: async (id) => (id === IDENTITY ? PSK : undefined),
    certificate: { key: pki.server.key, chain: pki.server.chain },
    trustAnchors: [pki.rootDer],
    verifyPeer: async (chain) => {
      if (revoked.has(Buffer.from(chain[0] as Uint8Array).toString('hex'))) throw new Error('certificate revoked');
    },
  });
  server.onDatagram((peer, data) => {
    received.push({ peer, text: new TextDecoder().decode(data) });
    void server.send(peer, data); // echo
  });
  port = server.address().port;
});

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await server?.close();
  rmSync(pki.dir, { recursive: true, force: true });
});

interface Run {
  out: () => string;
  exited: Promise<number | null>;
  stdin: (s: string) => void;
  kill: () => void;
}

function start(cmd: string, args: string[]): Run {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) =>
    child.on('exit', (code) => {
      children.delete(child);
      r(code);
    }),
  );
  return { out: () => out, exited, stdin: (s) => child.stdin.write(s), kill: () => child.kill('SIGKILL') };
}

/** Runs a client that should receive its own line back through our echo server. */
async function echoes(cmd: string, args: string[], line: string): Promise<string> {
  const run = start(cmd, args);
  run.stdin(`${line}\n`);
  try {
    await expect.poll(() => new RegExp(`^${line}\\r?$`, 'm').test(run.out()), { timeout: 20_000 }).toBe(true);
    return run.out();
  } finally {
    run.kill();
    await run.exited;
  }
}

/** Runs a client that must be refused: it exits non-zero and nothing reached the application. */
async function refused(cmd: string, args: string[], line: string): Promise<number | null> {
  const run = start(cmd, args);
  run.stdin(`${line}\n`);
  const code = await Promise.race([run.exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 20_000))]);
  if (code === 'hung') run.kill();
  expect(received.some((r) => r.text.includes(line))).toBe(false);
  return code === 'hung' ? -1 : code;
}

const sClient = (extra: string[]) => ['s_client', '-dtls1_2', '-connect', `127.0.0.1:${port}`, '-quiet', ...extra];
const pskArgs = (key = PSK_HEX, id = IDENTITY) => ['-psk', key, '-psk_identity', id, '-cipher', 'PSK-AES128-CCM8'];
const gnutls = (extra: string[]) => ['--udp', '--port', String(port), '127.0.0.1', ...extra];
const GNUTLS_PSK = 'NORMAL:-VERS-ALL:+VERS-DTLS1.2:-KX-ALL:+PSK:-CIPHER-ALL:+AES-128-CCM-8';
const GNUTLS_CERT = 'NORMAL:-VERS-ALL:+VERS-DTLS1.2:-KX-ALL:+ECDHE-ECDSA:-CIPHER-ALL:+AES-128-CCM-8';

describe('S13 S2 DTLS server interop: openssl s_client and gnutls-cli talk to our server', () => {
  it('openssl s_client, PSK-AES128-CCM8 (0xC0A8): echo, identity is the PSK identity', async () => {
    await echoes('openssl', sClient(pskArgs()), 'openssl-psk');
    expect(received.find((r) => r.text.startsWith('openssl-psk'))?.peer.identity).toEqual({ kind: 'psk', identity: IDENTITY });
  });

  it('openssl s_client, ECDHE-ECDSA-AES128-CCM8 (0xC0AE) with a client certificate, verifying our chain', async () => {
    const out = await echoes(
      'openssl',
      sClient(['-cipher', 'ECDHE-ECDSA-AES128-CCM8', '-cert', pki.files.clientCert, '-cert_chain', pki.files.intermediate, '-key', pki.files.clientKey, '-CAfile', pki.files.root, '-verify_return_error']),
      'openssl-cert',
    );
    expect(out).not.toMatch(/verify error/);
    const id = received.find((r) => r.text.startsWith('openssl-cert'))?.peer.identity;
    expect(id?.kind === 'certificate' && Buffer.from(id.chain[0] as Uint8Array).equals(Buffer.from(pki.client.der))).toBe(true);
  });

  it('gnutls-cli --udp, PSK and certificates', async () => {
    await echoes('gnutls-cli', gnutls(['--pskusername', IDENTITY, '--pskkey', PSK_HEX, '--priority', GNUTLS_PSK]), 'gnutls-psk');
    await echoes(
      'gnutls-cli',
      gnutls(['--x509cafile', pki.files.root, '--x509certfile', pki.files.clientChain, '--x509keyfile', pki.files.clientKey, '--priority', GNUTLS_CERT]),
      'gnutls-cert',
    );
    expect(received.find((r) => r.text.startsWith('gnutls-cert'))?.peer.identity.kind).toBe('certificate');
  });

  it('refuses a wrong PSK, an unknown identity, a certificate from another CA and a revoked one', async () => {
    const before = server.stats().handshakesRefused;
    expect(await refused('openssl', sClient(pskArgs('00'.repeat(16))), 'wrong-key')).not.toBe(0);
    expect(await refused('openssl', sClient(pskArgs(PSK_HEX, 'metal-unknown.1')), 'unknown-id')).not.toBe(0);
    expect(
      await refused('openssl', sClient(['-cipher', 'ECDHE-ECDSA-AES128-CCM8', '-cert', pki.files.strangerCert, '-key', pki.files.strangerKey, '-CAfile', pki.files.root]), 'stranger'),
    ).not.toBe(0);
    revoked.add(Buffer.from(pki.client.der).toString('hex'));
    try {
      expect(
        await refused(
          'gnutls-cli',
          gnutls(['--x509cafile', pki.files.root, '--x509certfile', pki.files.clientChain, '--x509keyfile', pki.files.clientKey, '--priority', GNUTLS_CERT]),
          'revoked',
        ),
      ).not.toBe(0);
    } finally {
      revoked.clear();
    }
    expect(server.stats().handshakesRefused - before).toBe(4);
  });
});

async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const p = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

async function sServer(extra: string[]): Promise<{ run: Run; port: number }> {
  const p = await freeUdpPort();
  const run = start('openssl', ['s_server', '-dtls1_2', '-accept', `127.0.0.1:${p}`, ...extra]);
  await expect.poll(() => run.out().includes('ACCEPT'), { timeout: 20_000 }).toBe(true);
  return { run, port: p };
}

describe('S13 DTLS client interop: our client talks to openssl s_server -dtls1_2', () => {
  it('PSK both ways, and a wrong PSK is refused', async () => {
    const { run, port: p } = await sServer(['-nocert', '-psk', PSK_HEX, '-psk_identity', IDENTITY, '-cipher', 'PSK-AES128-CCM8']);
    try {
      const c = await createDtlsClient({ host: '127.0.0.1', port: p, psk: { identity: IDENTITY, key: PSK } });
      const got = new Promise<string>((r) => c.onMessage((d) => r(new TextDecoder().decode(d))));
      await c.send(new TextEncoder().encode('from-tips\n'));
      await expect.poll(() => run.out().includes('from-tips'), { timeout: 20_000 }).toBe(true);
      run.stdin('from-openssl\n');
      expect(await got).toBe('from-openssl\n');
      await c.close();
    } finally {
      run.kill();
      await run.exited;
    }
    const wrong = await sServer(['-nocert', '-psk', '11'.repeat(16), '-cipher', 'PSK-AES128-CCM8']);
    try {
      // OpenSSL drops the Finished it cannot authenticate without an alert: the handshake times out.
      await expect(createDtlsClient({ host: '127.0.0.1', port: wrong.port, psk: { identity: IDENTITY, key: PSK }, handshakeTimeoutMs: 4000 })).rejects.toMatchObject({ code: 'timeout' });
    } finally {
      wrong.run.kill();
      await wrong.run.exited;
    }
  });

  it('ECDHE-ECDSA with mutual certificates; a server outside our trust anchors is refused', async () => {
    const { run, port: p } = await sServer([
      '-cert', pki.files.serverCert, '-cert_chain', pki.files.intermediate, '-key', pki.files.serverKey,
      '-cipher', 'ECDHE-ECDSA-AES128-CCM8', '-Verify', '2', '-CAfile', pki.files.root, '-verify_return_error',
    ]);
    try {
      const c = await createDtlsClient({ host: '127.0.0.1', port: p, certificate: { key: pki.client.key, chain: pki.client.chain }, trustAnchors: [pki.rootDer] });
      await c.send(new TextEncoder().encode('cert-from-tips\n'));
      await expect.poll(() => run.out().includes('cert-from-tips'), { timeout: 20_000 }).toBe(true);
      await c.close();
      const strangerAnchor = pki.stranger.chain[1] as Uint8Array;
      const refusedErr = await createDtlsClient({ host: '127.0.0.1', port: p, certificate: { key: pki.client.key, chain: pki.client.chain }, trustAnchors: [strangerAnchor] }).then(
        () => undefined,
        (e: DtlsError) => e.code,
      );
      expect(refusedErr).toBe('unknown_ca');
    } finally {
      run.kill();
      await run.exited;
    }
  });
});
