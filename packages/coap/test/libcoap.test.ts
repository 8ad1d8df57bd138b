/**
 * Conformance against a peer we did not write: Debian's libcoap `coap-client-openssl` (libcoap3-bin)
 * talking plain coap:// to a CoapServer on udpTransport. Plain UDP exists only here, in tests; the
 * master serves CoAP over DTLS only.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CoapServer, type DatagramTransport, udpTransport } from '../src/index.ts';

const CLIENT = 'coap-client-openssl';
const te = new TextEncoder();
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

let transport: DatagramTransport;
let server: CoapServer;
let dir: string;
let base: string;
const big = new Uint8Array(1024 * 1024);
for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24;
const bigEtag = Buffer.from(sha(big), 'hex').subarray(0, 8);
let reads = 0;
const stored: Record<string, Uint8Array> = {};
let state = 'first';

function client(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(CLIENT, ['-B', '30', ...args], { timeout: 90_000, encoding: 'utf8' }, (err, stdout, stderr) =>
      err ? reject(Object.assign(err, { stderr })) : resolve({ stdout, stderr }),
    );
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tips-coap-'));
  transport = await udpTransport({ host: '127.0.0.1', port: 0 });
  server = new CoapServer(transport, { logger: pino({ level: 'silent' }) });
  server.route('GET', '/big', async () => ({
    code: '2.05',
    contentFormat: 42,
    etag: bigEtag,
    payload: {
      size: big.length,
      read: async (offset, length) => {
        reads += 1;
        return big.slice(offset, offset + length);
      },
    },
  }));
  for (const method of ['PUT', 'POST'] as const) {
    server.route(method, '/upload/:name', async (r) => {
      stored[`${method} ${r.params.name}`] = r.payload;
      return { code: method === 'PUT' ? '2.04' : '2.01', payload: te.encode(sha(r.payload)) };
    });
  }
  server.route('GET', '/state', async () => ({ code: '2.05', contentFormat: 0, payload: te.encode(`<${state}>`) }), { observable: true });
  base = `coap://127.0.0.1:${transport.address().port}`;
});

afterAll(async () => {
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('S13 CoAP conformance with libcoap coap-client (RFC 7252/7959/7641, plain UDP, tests only)', () => {
  it.each([64, 1024])('GET of 1 MiB block-wise at -b %i arrives whole (sha256), one block read per request', async (b) => {
    const out = join(dir, `big-${b}`);
    reads = 0;
    await client(['-m', 'get', '-b', String(b), '-o', out, `${base}/big`]);
    const got = await readFile(out);
    expect(got.length).toBe(big.length);
    expect(sha(got)).toBe(sha(big));
    expect(reads).toBe(big.length / b); // the client's size was used, one slice per block
  });

  it.each([
    ['put', 'PUT'],
    ['post', 'POST'],
  ])('-m %s of a 100 KiB file with Block1 reaches the handler whole', async (m, method) => {
    const body = Uint8Array.from({ length: 100 * 1024 }, (_, i) => (i * 131 + 7) & 0xff);
    const file = join(dir, `body-${m}`);
    await writeFile(file, body);
    const { stdout } = await client(['-m', m, '-b', '256', '-f', file, `${base}/upload/${m}-file`]);
    expect(stored[`${method} ${m}-file`]).toEqual(body);
    expect(stdout).toContain(sha(body));
  });

  it('observe (-s 5): the first representation, then a notification after the resource changes; deregistered after', async () => {
    state = 'first';
    const proc = spawn(CLIENT, ['-m', 'get', '-s', '5', `${base}/state`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    proc.stdout.on('data', (d) => {
      stdout += d;
    });
    const exited = new Promise<number | null>((r) => proc.on('exit', r));
    for (let i = 0; i < 100 && server.observers('/state').length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(server.observers('/state')).toHaveLength(1);
    state = 'second';
    await server.notify('/state');
    expect(await exited).toBe(0);
    expect(stdout).toContain('<first>');
    expect(stdout).toContain('<second>');
    expect(stdout.indexOf('<first>')).toBeLessThan(stdout.indexOf('<second>'));
    for (let i = 0; i < 40 && server.observers('/state').length > 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(server.observers('/state')).toHaveLength(0);
  });

  it('4.04 for an unknown path, 4.05 for a method the resource does not have', async () => {
    const nf = await client(['-m', 'get', `${base}/nothing/here`]);
    expect(`${nf.stdout}${nf.stderr}`).toMatch(/4\.04/);
    const na = await client(['-m', 'delete', `${base}/big`]);
    expect(`${na.stdout}${na.stderr}`).toMatch(/4\.05/);
    expect(stored).not.toHaveProperty('DELETE big');
  });
});
