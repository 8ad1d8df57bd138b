// The TFTP server against clients we did not write: tftp-hpa (RFC 1350 only) and atftp (blksize,
// tsize, timeout, windowsize), over real UDP sockets on the loopback.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createMetrics, type GatewayMetrics } from '../status/metrics.ts';
import { SmallFileCache } from './files.ts';
import { TftpServer } from './tftp.ts';
import { decodeTftp, ERROR_CODE, encodeAck, encodeRequest, OPCODE } from './tftp-codec.ts';

const HOST = '127.0.0.1';
const MAC = '02:00:00:00:00:01';

function run(cmd: string, args: string[], cwd: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` });
    });
  });
}

let dir: string;
let ipxeDir: string;
let undionly: Buffer;
let efi: Buffer;
let server: TftpServer;
let metrics: GatewayMetrics;
let admitted: boolean;

async function metric(name: string): Promise<string> {
  return (await metrics.registry.metrics())
    .split('\n')
    .filter((l) => l.startsWith(name))
    .join('\n');
}

/** Sends raw datagrams from one socket and collects every answer for `ms`. */
async function exchange(packets: Uint8Array[], ms = 600): Promise<{ from: number; bytes: Buffer }[]> {
  const s = dgram.createSocket('udp4');
  const got: { from: number; bytes: Buffer }[] = [];
  s.on('message', (m, r) => got.push({ from: r.port, bytes: m }));
  await new Promise<void>((r) => s.bind(0, HOST, () => r()));
  for (const p of packets) s.send(p, server.port, HOST);
  await new Promise((r) => setTimeout(r, ms));
  s.close();
  return got;
}

describe('T13 Phase 1 TFTP first stage: real clients (tftp-hpa, atftp) against the gateway TFTP server', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tgw-tftp-'));
    ipxeDir = join(dir, 'ipxe');
    mkdirSync(ipxeDir);
    undionly = randomBytes(74_213);
    // An exact multiple of 1428: the transfer must end with an empty block (RFC 1350 §6).
    efi = randomBytes(1428 * 50);
    writeFileSync(join(ipxeDir, 'undionly.kpxe'), undionly);
    writeFileSync(join(ipxeDir, 'ipxe.efi'), efi);
    writeFileSync(join(dir, 'secret.txt'), 'not for metals');
    writeFileSync(join(ipxeDir, 'ipxe.lkrn'), 'not in the list');
    metrics = createMetrics();
    server = new TftpServer({
      address: HOST,
      port: 0,
      ipxeDir,
      files: new SmallFileCache(),
      admit: (ip) => (admitted && ip === HOST ? MAC : undefined),
      limits: { maxTransfers: 8, retries: 2 },
      log: pino({ level: 'silent' }),
      metrics,
    });
    await server.start();
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    admitted = true;
  });

  it('tftp-hpa (plain RFC 1350, 512-byte blocks) gets undionly.kpxe byte for byte', async () => {
    const r = await run('tftp', ['-v', '-m', 'binary', HOST, String(server.port), '-c', 'get', 'undionly.kpxe', 'out-hpa'], dir);
    expect(r.out).toMatch(/Received 74213 bytes/);
    expect(readFileSync(join(dir, 'out-hpa')).equals(undionly)).toBe(true);
    expect(await metric('tips_gateway_boot_requests_total{kind="tftp",outcome="ok"}')).toMatch(/ 1$/);
  });

  it('atftp negotiates blksize 1428, tsize, timeout and windowsize 4 (OACK) and gets the file; the last block is empty when the size is a multiple', async () => {
    const opts = ['--option', 'blksize 1428', '--option', 'tsize enable', '--option', 'timeout 2', '--option', 'windowsize 4'];
    const a = await run('atftp', ['--trace', ...opts, '-g', '-r', 'undionly.kpxe', '-l', 'out-a', HOST, String(server.port)], dir);
    expect(a.out).toMatch(/received OACK <[^>]*blksize: 1428/);
    expect(a.out).toMatch(/received OACK <[^>]*windowsize: 4/);
    expect(a.out).toMatch(/received OACK <[^>]*timeout: 2/);
    // Windows of four 1428-byte blocks, one ACK per window (RFC 7440).
    expect(a.out).toMatch(/received 4\. DATA <block: 4, size 1428>[^\n]*\nsent ACK <block: 4>/);
    expect(a.out).not.toMatch(/sent ACK <block: [123]>/);
    expect(readFileSync(join(dir, 'out-a')).equals(undionly)).toBe(true);
    const b = await run('atftp', [...opts, '-g', '-r', '/ipxe.efi', '-l', 'out-b', HOST, String(server.port)], dir);
    expect(b.code).toBe(0);
    expect(readFileSync(join(dir, 'out-b')).equals(efi)).toBe(true);
  });

  it('refuses write requests and netascii politely with an ERROR packet, and writes nothing', async () => {
    writeFileSync(join(dir, 'upload.bin'), 'payload');
    const put = await run('tftp', ['-v', '-m', 'binary', HOST, String(server.port), '-c', 'put', 'upload.bin', 'undionly.kpxe'], dir);
    expect(put.out).toMatch(/Error code 2: this server is read-only/);
    expect(readFileSync(join(ipxeDir, 'undionly.kpxe')).equals(undionly)).toBe(true);
    expect(existsSync(join(ipxeDir, 'upload.bin'))).toBe(false);
    const ascii = await run('tftp', ['-v', '-m', 'ascii', HOST, String(server.port), '-c', 'get', 'undionly.kpxe', 'out-ascii'], dir);
    expect(ascii.out).toMatch(/Error code 4: only octet mode is served/);
  });

  it('path traversal and names outside the boot programs are refused (access violation / not found)', async () => {
    for (const name of ['../secret.txt', '/../secret.txt', 'sub/../../secret.txt', '..\\secret.txt', join(dir, 'secret.txt')]) {
      const [ans] = await exchange([encodeRequest(OPCODE.RRQ, name, 'octet')]);
      expect(decodeTftp(ans!.bytes)).toMatchObject({ op: OPCODE.ERROR, code: ERROR_CODE.ACCESS_VIOLATION });
    }
    // In the directory but not a boot program, or not there at all: not found.
    for (const name of ['ipxe.lkrn', 'secret.txt', 'IPXE.EFI']) {
      const [ans] = await exchange([encodeRequest(OPCODE.RRQ, name, 'octet')]);
      expect(decodeTftp(ans!.bytes), name).toMatchObject({ op: OPCODE.ERROR, code: ERROR_CODE.FILE_NOT_FOUND });
    }
    const hpa = await run('tftp', ['-v', '-m', 'binary', HOST, String(server.port), '-c', 'get', '../secret.txt', 'out-x'], dir);
    expect(hpa.out).toMatch(/Error code 2/);
    expect(existsSync(join(dir, 'out-x')) ? readFileSync(join(dir, 'out-x')).length : 0).toBe(0);
  });

  it('an interface that is not Active gets no packet at all', async () => {
    admitted = false;
    const got = await exchange([encodeRequest(OPCODE.RRQ, 'undionly.kpxe', 'octet'), encodeRequest(OPCODE.WRQ, 'x', 'octet')], 1500);
    expect(got).toEqual([]);
    const r = await run('atftp', ['--tftp-timeout', '1', '-g', '-r', 'undionly.kpxe', '-l', 'out-refused', HOST, String(server.port)], dir);
    expect(r.code).not.toBe(0);
    expect(existsSync(join(dir, 'out-refused')) ? readFileSync(join(dir, 'out-refused')).length : 0).toBe(0);
    expect(await metric('tips_gateway_boot_requests_total{kind="tftp",outcome="refused"}')).not.toBe('');
  });

  it('retransmits an unacknowledged block after the timeout, answers a stranger TID with error 5, gives up after the retries', async () => {
    const s = dgram.createSocket('udp4');
    const got: { port: number; p: ReturnType<typeof decodeTftp> }[] = [];
    s.on('message', (m, r) => got.push({ port: r.port, p: decodeTftp(m) }));
    await new Promise<void>((r) => s.bind(0, HOST, () => r()));
    s.send(encodeRequest(OPCODE.RRQ, 'undionly.kpxe', 'octet', new Map([['timeout', '1']])), server.port, HOST);
    await new Promise((r) => setTimeout(r, 300));
    expect(got[0]!.p).toMatchObject({ op: OPCODE.OACK });
    const tid = got[0]!.port;
    expect(tid).not.toBe(server.port);
    // Acknowledge the OACK: block 1 comes; do not acknowledge it.
    s.send(encodeAck(0), tid, HOST);
    const stranger = await exchangeFrom(encodeAck(1), tid);
    expect(stranger.map((x) => decodeTftp(x))).toEqual([{ op: OPCODE.ERROR, code: ERROR_CODE.UNKNOWN_TID, message: 'unknown transfer ID' }]);
    await new Promise((r) => setTimeout(r, 3500));
    const data1 = got.filter((g) => g.p.op === OPCODE.DATA && g.p.block === 1);
    expect(data1.length).toBeGreaterThanOrEqual(2);
    expect(got.some((g) => g.p.op === OPCODE.ERROR)).toBe(true);
    expect(server.activeTransfers).toBe(0);
    s.close();
  });

  it('bounds the number of transfers at once: the next request is told the server is busy', async () => {
    const sockets: dgram.Socket[] = [];
    for (let i = 0; i < 8; i++) {
      const s = dgram.createSocket('udp4');
      await new Promise<void>((r) => s.bind(0, HOST, () => r()));
      s.send(encodeRequest(OPCODE.RRQ, 'undionly.kpxe', 'octet'), server.port, HOST);
      sockets.push(s);
    }
    await new Promise((r) => setTimeout(r, 300));
    expect(server.activeTransfers).toBe(8);
    const [busy] = await exchange([encodeRequest(OPCODE.RRQ, 'undionly.kpxe', 'octet')]);
    expect(decodeTftp(busy!.bytes)).toEqual({ op: OPCODE.ERROR, code: ERROR_CODE.NOT_DEFINED, message: 'server busy, try again' });
    for (const s of sockets) s.close();
  });
});

/** One datagram from a fresh socket (another TID) to `port`; the answers within 500 ms. */
async function exchangeFrom(packet: Uint8Array, port: number): Promise<Buffer[]> {
  const s = dgram.createSocket('udp4');
  const got: Buffer[] = [];
  s.on('message', (m) => got.push(m));
  await new Promise<void>((r) => s.bind(0, HOST, () => r()));
  s.send(packet, port, HOST);
  await new Promise((r) => setTimeout(r, 500));
  s.close();
  return got;
}
