import { createHash, randomBytes, webcrypto } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRootCa, generateKeyPair, issueCertificate, privateKeyToPem, serialFrom } from '@tips/trust';
import pino from 'pino';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ClientError } from '../errors.ts';
import { resolveLinks } from './links.ts';
import { addRange, downloadMultipath, type MultipathOptions, missingChunks } from './multipath.ts';

const log = pino({ level: 'silent' });
const SIZE = 3 * 1024 * 1024 + 12_345;
const payload = randomBytes(SIZE);
const sha256 = createHash('sha256').update(payload).digest('hex');
// Two links on this host: Linux answers on every address of 127/8, so each is its own source address.
const LINKS = [
  { iface: 'a', localAddress: '127.0.0.1' },
  { iface: 'b', localAddress: '127.0.0.2' },
];

let tls: { ca: string; cert: string; key: string };
beforeAll(async () => {
  const now = Date.now();
  const serial = () => serialFrom(webcrypto.getRandomValues(new Uint8Array(16)));
  const root = await createRootCa({ commonName: 'Test root', notBefore: new Date(now - 60_000), notAfter: new Date(now + 86_400_000), serial: serial() });
  const keys = await generateKeyPair();
  const cert = await issueCertificate(root, {
    identity: { kind: 'master', id: '' },
    publicKey: keys.publicKey,
    serial: serial(),
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 86_400_000),
    usage: 'server',
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
  });
  tls = { ca: `${root.cert.toString('pem')}\n`, cert: `${cert.toString('pem')}\n`, key: await privateKeyToPem(keys.privateKey) };
});

/** What the server does per request: sent bytes by client address, and hooks to misbehave. */
interface Behaviour {
  /** Per source address: bytes/second (undefined: as fast as it goes). */
  rate?: Record<string, number>;
  /** Per source address: after this many bytes in total, connections from it are cut and refused. */
  dieAfter?: Record<string, number>;
  /** Answer the first request with this status and error code. */
  refuseOnce?: { status: number; code: string };
  refuseAlways?: { status: number; code: string };
}
let server: Server;
let url: string;
let work: string;
let sent: Record<string, number>;
let requests: { from: string; range: string; auth: string | undefined }[];
let behaviour: Behaviour;

function serve(req: IncomingMessage, res: ServerResponse): void {
  const from = req.socket.remoteAddress!.replace('::ffff:', '');
  requests.push({ from, range: String(req.headers.range), auth: req.headers.authorization });
  const refuse = behaviour.refuseAlways ?? behaviour.refuseOnce;
  if (refuse) {
    behaviour.refuseOnce = undefined;
    res.writeHead(refuse.status, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: refuse.code, message: 'no' } }));
    return;
  }
  const dieAt = behaviour.dieAfter?.[from];
  if (dieAt !== undefined && (sent[from] ?? 0) >= dieAt) {
    req.socket.destroy();
    return;
  }
  const m = /^bytes=(\d+)-(\d+)$/.exec(String(req.headers.range));
  if (!m) {
    res.writeHead(400).end();
    return;
  }
  const start = Number(m[1]);
  const end = Math.min(Number(m[2]), SIZE - 1);
  res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${SIZE}`, 'content-length': end - start + 1 });
  let at = start;
  const rate = behaviour.rate?.[from];
  const step = 16 * 1024;
  const pump = () => {
    while (at <= end) {
      if (dieAt !== undefined && (sent[from] ?? 0) >= dieAt) {
        res.socket?.destroy();
        return;
      }
      const n = Math.min(step, end - at + 1);
      const ok = res.write(payload.subarray(at, at + n));
      at += n;
      sent[from] = (sent[from] ?? 0) + n;
      if (rate) {
        setTimeout(pump, (n / rate) * 1000);
        return;
      }
      if (!ok) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  res.on('close', () => {
    at = end + 1;
  });
  pump();
}

beforeEach(async () => {
  work = mkdtempSync(join(tmpdir(), 'tips-multipath-'));
  sent = {};
  requests = [];
  behaviour = {};
  server = createServer({ cert: tls.cert, key: tls.key }, serve);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `https://localhost:${(server.address() as AddressInfo).port}/blob`;
});
afterEach(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  rmSync(work, { recursive: true, force: true });
});

function options(extra: Partial<MultipathOptions> = {}): MultipathOptions {
  let token = 1;
  return {
    url,
    file: join(work, 'glaze.part'),
    size: SIZE,
    sha256,
    links: LINKS,
    tls: { ca: tls.ca },
    authorization: async () => `PoP t${token}`,
    dropToken: () => {
      token++;
    },
    log,
    chunkBytes: 256 * 1024,
    minStealBytes: 32 * 1024,
    idleTimeoutMs: 2000,
    ...extra,
  };
}
const digest = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

describe('T17 multi-homing: disjoint ranges over every link, assembled and verified', () => {
  it('fetches disjoint ranges over both links and assembles exactly the payload; no resume record is left', async () => {
    const progress: number[] = [];
    const r = await downloadMultipath(options({ onProgress: (d) => progress.push(d) }));
    expect(digest(join(work, 'glaze.part'))).toBe(sha256);
    expect(r.perLink['127.0.0.1']).toBeGreaterThan(0);
    expect(r.perLink['127.0.0.2']).toBeGreaterThan(0);
    // Disjoint: together the links carried the payload once, no byte twice.
    expect(r.perLink['127.0.0.1']! + r.perLink['127.0.0.2']!).toBe(SIZE);
    expect(sent['127.0.0.1']! + sent['127.0.0.2']!).toBeLessThan(SIZE + 2 * 256 * 1024);
    expect(new Set(requests.map((q) => q.from))).toEqual(new Set(['127.0.0.1', '127.0.0.2']));
    expect(requests.every((q) => q.auth === 'PoP t1')).toBe(true);
    expect(progress.length).toBeGreaterThanOrEqual(5);
    expect(existsSync(join(work, 'glaze.part.mp'))).toBe(false);
    expect(existsSync(join(work, 'glaze.part.mp.json'))).toBe(false);
  });

  it('work stealing: a slow link does not hold the rest — the fast link takes over part of the range in flight on it', async () => {
    behaviour.rate = { '127.0.0.2': 50 * 1024 };
    const r = await downloadMultipath(options());
    expect(digest(join(work, 'glaze.part'))).toBe(sha256);
    // Without stealing the slow link would deliver at least the whole chunk it took first (256 KiB);
    // with it, the fast link fetched the second half of that chunk (and of what was left, again).
    expect(r.perLink['127.0.0.2']).toBeLessThan(256 * 1024);
    expect(r.perLink['127.0.0.1']! + r.perLink['127.0.0.2']!).toBe(SIZE);
  });

  it('a link that dies mid-download: its ranges move to the other link, the payload is complete and right', async () => {
    behaviour.dieAfter = { '127.0.0.2': 400 * 1024 };
    const r = await downloadMultipath(options());
    expect(digest(join(work, 'glaze.part'))).toBe(sha256);
    // Dropped, or not yet dropped when the other link had fetched the rest.
    expect(r.deadLinks.filter((a) => a !== '127.0.0.2')).toEqual([]);
    expect(r.perLink['127.0.0.2']).toBeGreaterThan(0);
    expect(r.perLink['127.0.0.1']! + r.perLink['127.0.0.2']!).toBe(SIZE);
    expect(r.perLink['127.0.0.2']).toBeLessThanOrEqual(400 * 1024 + 64 * 1024);
  });

  it('a silent link (no byte within the idle timeout) is given up and the rest completes', async () => {
    behaviour.rate = { '127.0.0.2': 1 };
    const r = await downloadMultipath(options({ idleTimeoutMs: 500, maxLinkFailures: 2 }));
    expect(digest(join(work, 'glaze.part'))).toBe(sha256);
    expect(r.perLink['127.0.0.1']).toBeGreaterThan(SIZE - 64 * 1024);
  });

  it('every link down: fails with download_failed, keeps what arrived, and the next run fetches only the rest', async () => {
    behaviour.dieAfter = { '127.0.0.1': 1024 * 1024, '127.0.0.2': 512 * 1024 };
    const first = await downloadMultipath(options({ maxLinkFailures: 2 })).catch((e) => e);
    expect(first).toBeInstanceOf(ClientError);
    expect((first as ClientError).code).toBe('download_failed');
    expect(existsSync(join(work, 'glaze.part'))).toBe(false);
    const record = JSON.parse(readFileSync(join(work, 'glaze.part.mp.json'), 'utf8')) as { done: [number, number][] };
    const kept = record.done.reduce((n, [s, e]) => n + e - s, 0);
    expect(kept).toBeGreaterThan(1024 * 1024);
    behaviour = {};
    sent = {};
    const second = await downloadMultipath(options());
    expect(second.resumed).toBe(kept);
    expect(sent['127.0.0.1']! + (sent['127.0.0.2'] ?? 0)).toBeLessThanOrEqual(SIZE - kept + 2 * 16 * 1024);
    expect(digest(join(work, 'glaze.part'))).toBe(sha256);
  });

  it('a resume record of other bytes (another digest) is not trusted: the download starts over', async () => {
    writeFileSync(join(work, 'glaze.part.mp'), Buffer.alloc(SIZE, 7));
    writeFileSync(join(work, 'glaze.part.mp.json'), JSON.stringify({ size: SIZE, sha256: '00'.repeat(32), done: [[0, SIZE]] }));
    const r = await downloadMultipath(options());
    expect(r.resumed).toBe(0);
    expect(digest(join(work, 'glaze.part'))).toBe(sha256);
  });

  it('reauth_required: a fresh token and the range again; 403 forbidden ends the download as forbidden', async () => {
    behaviour.refuseOnce = { status: 401, code: 'reauth_required' };
    await downloadMultipath(options());
    expect(digest(join(work, 'glaze.part'))).toBe(sha256);
    expect(requests.some((q) => q.auth === 'PoP t2')).toBe(true);
    rmSync(join(work, 'glaze.part'));
    behaviour = { refuseAlways: { status: 403, code: 'metal_blocked' } };
    const e = await downloadMultipath(options()).catch((x) => x);
    expect(e).toBeInstanceOf(ClientError);
    expect((e as ClientError).code).toBe('forbidden');
    expect(existsSync(join(work, 'glaze.part'))).toBe(false);
  });
});

describe('T17 range bookkeeping and link resolution', () => {
  it('merges done ranges and lists only the missing chunks', () => {
    let d = addRange([], [10, 20]);
    d = addRange(d, [0, 5]);
    d = addRange(d, [5, 10]);
    d = addRange(d, [30, 40]);
    expect(d).toEqual([
      [0, 20],
      [30, 40],
    ]);
    expect(missingChunks(d, 50, 4)).toEqual([
      [20, 24],
      [24, 28],
      [28, 30],
      [40, 44],
      [44, 48],
      [48, 50],
    ]);
    expect(missingChunks([[0, 50]], 50, 4)).toEqual([]);
  });

  it('binds to the IPv4 address of the interface with the linked MAC, whatever the OS calls it; unknown links are left out', () => {
    const os = {
      lo: [{ address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: true, cidr: '127.0.0.1/8' }],
      enp1s0: [
        { address: 'fe80::1', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '02:00:00:00:07:01', internal: false, cidr: 'fe80::1/64', scopeid: 2 },
        { address: '10.1.0.2', netmask: '255.255.255.0', family: 'IPv4', mac: '02:00:00:00:07:01', internal: false, cidr: '10.1.0.2/24' },
      ],
      wlan0: [{ address: '10.2.0.2', netmask: '255.255.255.0', family: 'IPv4', mac: '02:00:00:00:07:ff', internal: false, cidr: '10.2.0.2/24' }],
    } as NodeJS.Dict<import('node:os').NetworkInterfaceInfo[]>;
    expect(
      resolveLinks(
        [
          { name: 'eth0', mac: '02:00:00:00:07:01', addresses: [] },
          { name: 'wlan0', mac: '02:00:00:00:07:FF', addresses: ['10.2.0.2'] },
          { name: 'usb0', mac: '02:00:00:00:07:77', addresses: ['10.3.0.2'] },
        ],
        os,
      ),
    ).toEqual([
      { iface: 'enp1s0', localAddress: '10.1.0.2' },
      { iface: 'wlan0', localAddress: '10.2.0.2' },
    ]);
    expect(resolveLinks(undefined, os)).toEqual([]);
  });
});
