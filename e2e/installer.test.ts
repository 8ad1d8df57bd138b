// The Phase 1 installer as a real process in a network namespace, against a real HTTP server playing
// the gateway's A2 boot endpoints (work, Glaze with Range, report), writing a disk image attached with
// losetup. Issue 8 tests 3 (kill -9 during the write) and 4 (refusals leave the disk untouched), and
// the read-back catching a disk that lies (verify_failed).
import { execFileSync } from 'node:child_process';
import { createPublicKey, randomBytes, randomInt } from 'node:crypto';
import { chmodSync, closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bindGlaze, type CborMap, coseSign1Verify, decodeCbor, decodeEnvelope, encodeEnvelope, generateSigningKey } from '@tips/suit';
import { type Namespace, type NsProcess, Topology } from '@tips/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from './helpers.ts';
import { encodeMarker } from '../apps/installer/src/marker.ts';
import { assertHonestClaim, fuseExport, type Glaze, inspectRoot, MiB, makeGlaze, qcow2L2Entry, readMarker, setQcow2L2Entry, sha } from './installer-disk.ts';

const INSTALLER = join(ROOT, 'apps/installer/bin/tips-installer.js');
const DISK_SIZE = 128 * MiB;

// ---------------------------------------------------------------- the gateway's A2 endpoints, played by a real HTTP server

const operator = generateSigningKey('es256');
const stranger = generateSigningKey('es256');
const CA_PEM = '-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n';

interface Job {
  id: string;
  token: string;
  glaze: Glaze;
  /** The Glaze the manifest describes and the work announces (differs from `glaze` when tampered). */
  announced: { size: number; sha256: string };
  manifest: Uint8Array;
  minSequence: number;
  vendorId: string | null;
  installerKey: string | null;
  reports: { payload: Map<string, unknown>; raw: Buffer }[];
  workCalls: number;
  /** GETs of the Glaze from byte 0 (a verify pass or a write pass; resumed Range requests not counted). */
  glazeGets: number;
  /** As the master does, a new one-use enrollment secret with every claim, unless frozen. */
  frozenSecret: boolean;
}

const jobs = new Map<string, Job>();
let server: Server;
let bootUrl = '';

function manifestFor(g: { sha256: string; size: number }, seq: number, key = operator.key): Uint8Array {
  return bindGlaze({ payloadSha256: g.sha256, payloadSize: g.size, uri: 'http://gateway.invalid/glaze', vendorDomain: 'tips.local', classInfo: 'base-os', component: 'base-os', sequenceNumber: seq, key });
}

function newJob(glaze: Glaze, opts: Partial<Pick<Job, 'announced' | 'manifest' | 'minSequence' | 'vendorId'>> = {}): Job {
  const announced = opts.announced ?? { size: glaze.bytes.length, sha256: glaze.sha256 };
  const job: Job = {
    id: `p1j_${randomBytes(6).toString('hex')}`,
    token: randomBytes(32).toString('base64url'),
    glaze,
    announced,
    manifest: opts.manifest ?? manifestFor({ sha256: announced.sha256, size: announced.size }, 10),
    minSequence: opts.minSequence ?? 0,
    vendorId: opts.vendorId ?? null,
    installerKey: null,
    reports: [],
    workCalls: 0,
    glazeGets: 0,
    frozenSecret: false,
  };
  jobs.set(job.id, job);
  return job;
}

function send(res: ServerResponse, status: number, body?: unknown): void {
  if (body === undefined) {
    res.writeHead(status).end();
    return;
  }
  const b = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': b.length }).end(b);
}
const fail = (res: ServerResponse, status: number, code: string) => send(res, status, { error: { code, message: code }, requestId: 'test' });

async function body(req: IncomingMessage, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > max) throw new Error('too large');
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://x');
  if (req.method === 'POST' && url.pathname === '/phase1/work') {
    const { token, installerKey } = JSON.parse((await body(req, 4096)).toString()) as { token: string; installerKey: string };
    const job = [...jobs.values()].find((j) => j.token === token);
    if (!job) return fail(res, 401, 'phase1_token_invalid');
    if (job.installerKey && job.installerKey !== installerKey) return fail(res, 409, 'job_claimed');
    job.installerKey = installerKey;
    if (!job.frozenSecret) job.workCalls++;
    return send(res, 200, {
      jobId: job.id,
      metal: { id: 'mtl_test', name: 'pi-07', tipsId: 'tips-id-pi-07' },
      glaze: { id: job.glaze.id, name: 'base-os', version: '1.0', size: job.announced.size, sha256: job.announced.sha256 },
      manifest: Buffer.from(job.manifest).toString('base64'),
      trustedKeys: [{ id: 'key_ops', name: 'ops', alg: 'ES256', publicKeyPem: operator.publicPem }],
      minSequence: job.minSequence,
      vendorId: job.vendorId,
      classId: null,
      glazePath: `/phase1/jobs/${job.id}/glaze`,
      reportPath: `/phase1/jobs/${job.id}/report`,
      enrollment: { secretId: `sec_${job.workCalls}`, secret: `s3cret-${job.id}-${job.workCalls}`, estUrl: 'https://master.test:8443/.well-known/est', masterUrl: 'https://master.test:8443', caPem: CA_PEM },
    });
  }
  const m = /^\/phase1\/jobs\/([^/]+)\/(glaze|report)$/.exec(url.pathname);
  const job = m ? jobs.get(m[1]!) : undefined;
  if (!m || !job) return fail(res, 404, 'not_found');
  if (m[2] === 'glaze' && req.method === 'GET') {
    const b = job.glaze.bytes;
    const r = /^bytes=(\d+)-(\d*)$/.exec(String(req.headers.range ?? ''));
    if (req.headers.range && !r) return fail(res, 416, 'range');
    const start = r ? Number(r[1]) : 0;
    if (start === 0) job.glazeGets++;
    const end = r?.[2] ? Math.min(Number(r[2]), b.length - 1) : b.length - 1;
    if (start >= b.length) {
      res.writeHead(416, { 'content-range': `bytes */${b.length}` }).end();
      return;
    }
    res.writeHead(r ? 206 : 200, { 'content-length': end - start + 1, 'accept-ranges': 'bytes', ...(r ? { 'content-range': `bytes ${start}-${end}/${b.length}` } : {}) });
    // Sent in 1 MiB pieces with back-pressure, so a kill can land in the middle of a download too.
    for (let o = start; o <= end; o += MiB) {
      if (!res.write(b.subarray(o, Math.min(o + MiB, end + 1)))) await new Promise((ok) => res.once('drain', ok));
      if (res.destroyed) return;
    }
    res.end();
    return;
  }
  if (m[2] === 'report' && req.method === 'POST') {
    if (req.headers['content-type'] !== 'application/cose') return fail(res, 415, 'unsupported_media_type');
    const raw = await body(req, 64 * 1024);
    if (!job.installerKey) return fail(res, 401, 'report_invalid');
    const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: job.installerKey }, format: 'jwk' });
    let payload: Uint8Array;
    try {
      payload = coseSign1Verify(new Uint8Array(raw), [{ publicKey }]).payload;
    } catch {
      return fail(res, 401, 'report_invalid');
    }
    const map = decodeCbor(payload) as CborMap;
    job.reports.push({ payload: new Map([...map].map(([k, v]) => [String(k), v])), raw });
    return send(res, 204);
  }
  return fail(res, 405, 'method_not_allowed');
}

// ---------------------------------------------------------------- running the installer

let topo: Topology;
let metal: Namespace;
let work: string;

function startInstaller(job: Job, disk: string, stateDir: string, extra: string[] = []): NsProcess {
  return metal.spawn(process.execPath, [INSTALLER, '--boot-url', bootUrl, '--token', job.token, '--job', job.id, '--disk', disk, '--state-dir', stateDir, '--no-reboot', ...extra], { label: `installer ${job.id}` });
}

async function runInstaller(job: Job, disk: string, stateDir: string, extra: string[] = []): Promise<{ code: number | null; output: string }> {
  const p = startInstaller(job, disk, stateDir, extra);
  const code = await p.exited;
  return { code, output: p.output };
}

function lastReport(job: Job): Map<string, unknown> {
  const r = job.reports.at(-1);
  expect(r, `job ${job.id} has no report`).toBeDefined();
  return r!.payload;
}

function freshDisk(name: string): string {
  const disk = join(work, name);
  writeFileSync(disk, Buffer.alloc(0));
  execFileSync('truncate', ['-s', String(DISK_SIZE), disk]);
  // Not zeros: a disk with content, so "untouched" is tested against bytes that could change.
  const fd = openSync(disk, 'r+');
  writeSync(fd, randomBytes(4 * MiB), 0, 4 * MiB, 0);
  closeSync(fd);
  return disk;
}

let g0: Glaze;
let g1: Glaze;
let g2: Glaze;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'tips-e2e-installer-'));
  chmodSync(work, 0o700);
  g0 = makeGlaze(work, 'glz_g0', 40, 16);
  g1 = makeGlaze(work, 'glz_g1', 48, 24);
  g2 = makeGlaze(work, 'glz_g2', 40, 16);
  topo = await Topology.create('inst');
  metal = await topo.namespace('metal');
  const link = await topo.hostLink(metal, 'eth0');
  server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) fail(res, 500, 'internal');
      else res.destroy();
    });
  });
  await new Promise<void>((ok) => server.listen(0, link.hostIp, ok));
  bootUrl = `http://${link.hostIp}:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await topo?.destroy();
  await new Promise((ok) => (server ? server.close(ok) : ok(undefined)));
  if (work) {
    // A kill -9 in the configure step leaves the installer's loop device attached (a metal reboots
    // instead): detach every loop device over this file's disk images.
    for (const f of readdirSync(work)) {
      for (const line of execFileSync('losetup', ['-j', join(work, f)], { encoding: 'utf8' }).split('\n')) {
        const dev = line.split(':')[0];
        if (dev) execFileSync('losetup', ['-d', dev]);
      }
    }
    rmSync(work, { recursive: true, force: true });
  }
});

describe('T13 S12 Phase 1 installer: kill -9 at random points, then a re-run completes; the disk never claims a Glaze it does not fully hold', () => {
  it('installs G0, then G1 through kills in every phase (download, body, head, read-back, configure), each checked on the disk', async () => {
    const disk = freshDisk('disk-kill.img');
    expect(readMarker(disk)).toBeNull();

    // The disk first holds G0, installed by a full run: a claim the kills below must not leave standing.
    const j0 = newJob(g0);
    const first = await runInstaller(j0, disk, join(work, 'state-j0'));
    expect(first.code, first.output).toBe(0);
    expect(assertHonestClaim(disk, [g0], 'after G0')?.sha256).toBe(g0.sha256);
    expect(lastReport(j0).get('result')).toBe('installed');
    expect(lastReport(j0).get('bytesWritten')).toBe(g0.bytes.length);

    const j1 = newJob(g1);
    const state = join(work, 'state-j1');
    // Kill points: after a log line of that phase, plus a random delay (so each run lands elsewhere).
    const points: [RegExp, number][] = [
      [/"phase":"download"/, 5],
      [/writing the disk/, 0],
      [/writing the disk/, 15],
      [/"stage":"head"|"stage":"verify"|read-back/, 0],
      [/read-back digest matches/, 0],
      [/TIPS-C configuration written/, 0],
    ];
    const phases: string[] = [];
    for (const [i, [pattern, maxDelay]] of points.entries()) {
      const p = startInstaller(j1, disk, state);
      try {
        await p.waitFor(pattern, 60_000);
      } catch {
        // It finished (or failed) before the kill point: the checks below still hold.
      }
      if (maxDelay) await new Promise((r) => setTimeout(r, randomInt(maxDelay + 1)));
      await p.kill9();
      const lines = p.output.split('\n').filter((l) => l.startsWith('{'));
      phases.push(String(JSON.parse(lines.at(-1) ?? '{}').phase ?? 'start'));
      const claim = assertHonestClaim(disk, [g0, g1], `kill ${i} (${pattern})`);
      // Once G1's write began, G0's claim is gone (the marker is wiped before the first byte).
      if (claim && /"stage":"(wipe|body|head|verify)"/.test(p.output)) expect(claim.sha256, `kill ${i}: the disk still claims G0 after G1's write began`).toBe(g1.sha256);
    }
    // The kills landed inside the write, not only around it.
    expect(phases.filter((ph) => ph === 'write' || ph === 'verify').length, phases.join(',')).toBeGreaterThan(0);

    const done = await runInstaller(j1, disk, state);
    expect(done.code, done.output).toBe(0);
    const claim = assertHonestClaim(disk, [g0, g1], 'final');
    expect(claim).toMatchObject({ glazeId: g1.id, sha256: g1.sha256, size: g1.bytes.length, sequence: 10, jobId: j1.id });
    expect(lastReport(j1)).toEqual(
      new Map<string, unknown>([
        ['at', expect.any(String)],
        ['disk', disk],
        ['jobId', j1.id],
        ['reason', null],
        ['detail', expect.toSatisfy((d: unknown) => d === null || /already installed/.test(String(d)))],
        ['result', 'installed'],
        ['glazeSha256', g1.sha256],
        ['bytesWritten', expect.any(Number)],
      ]),
    );
    // Every run of the job used the one key bound at the first `work` (a second key would be 409).
    expect(j1.workCalls).toBe(points.length + 1);

    // TIPS-C's files (contract B) are in the installed system, with the last claim's secret, 0600.
    const root = inspectRoot(disk);
    expect(root.config).toEqual({
      masterUrl: 'https://master.test:8443',
      estUrl: 'https://master.test:8443/.well-known/est',
      caFile: '/etc/tips-client/ca.pem',
      tipsId: 'tips-id-pi-07',
      metalId: 'mtl_test',
      enrollmentFile: '/etc/tips-client/enrollment.json',
      stateDir: '/var/lib/tips-client',
      vendorId: null,
      classId: null,
    });
    expect(root.enrollment).toEqual({ secretId: `sec_${j1.workCalls}`, secret: `s3cret-${j1.id}-${j1.workCalls}` });
    expect(root.enrollmentMode).toBe(0o600);
    expect(root.ca).toBe(CA_PEM);
    // No secret in the installer's logs.
    expect(done.output).not.toContain(j1.token);
    expect(done.output).not.toContain(`s3cret-${j1.id}`);

    // A restarted installer on a disk that already claims this Glaze re-reports without writing the
    // Glaze again; the claim's new enrollment secret (the old one is revoked) replaces the old files.
    const again = await runInstaller(j1, disk, join(work, 'state-j1'));
    expect(again.code, again.output).toBe(0);
    expect(lastReport(j1).get('result')).toBe('installed');
    expect(lastReport(j1).get('bytesWritten')).toBe(0);
    expect(String(lastReport(j1).get('detail'))).toMatch(/already installed/);
    expect(assertHonestClaim(disk, [g1], 're-report')?.jobId).toBe(j1.id);
    expect(inspectRoot(disk).enrollment).toEqual({ secretId: `sec_${j1.workCalls}`, secret: `s3cret-${j1.id}-${j1.workCalls}` });
    // With the same files already there, a re-report changes not one byte of the disk.
    j1.frozenSecret = true;
    const before = sha(readFileSync(disk));
    const third = await runInstaller(j1, disk, join(work, 'state-j1'));
    expect(third.code, third.output).toBe(0);
    expect(sha(readFileSync(disk))).toBe(before);
    expect(lastReport(j1).get('bytesWritten')).toBe(0);
  });
});

describe('T13 D4 Phase 1 installer RAM spool (tips.spool / --spool-budget): one download when the Glaze fits, two when it does not', () => {
  const cases: [string, string[], number, RegExp][] = [
    ['default budget (25 % of MemAvailable): verified, kept in RAM, written from there', [], 1, /kept in RAM/],
    ['--spool-budget 1M (below the Glaze): verified and dropped, downloaded again to write', ['--spool-budget', '1M'], 2, /not kept: larger than the RAM budget/],
  ];
  for (const [what, extra, gets, log] of cases) {
    it(`${what} → ${gets} download(s), the disk holds the Glaze and claims it`, async () => {
      const disk = freshDisk(`disk-spool-${gets}-${extra.join('')}.img`);
      const job = newJob(g2);
      const r = await runInstaller(job, disk, join(work, `state-${job.id}`), extra);
      expect(r.code, r.output).toBe(0);
      expect(r.output).toMatch(log);
      expect(job.glazeGets).toBe(gets);
      // Its first MiB and payload are G2's, with the TIPS-C files the installer adds (not a raw copy).
      expect(assertHonestClaim(disk, [g2], what)?.sha256).toBe(g2.sha256);
      expect(lastReport(job).get('result')).toBe('installed');
      rmSync(disk);
    });
  }

  it('a tampered stream with the spool: refused after one download, the blank disk byte-identical, nothing claimed', async () => {
    const blank = freshDisk('disk-spool-tampered.img');
    const before = sha(readFileSync(blank));
    const b = Buffer.from(g2.bytes);
    b[b.length - 1] = b[b.length - 1]! ^ 1;
    const job = newJob({ ...g2, bytes: b }, { announced: { size: g2.bytes.length, sha256: g2.sha256 } });
    const r = await runInstaller(job, blank, join(work, `state-${job.id}`));
    expect(r.code, r.output).toBe(2);
    expect(r.output).toMatch(/kept in RAM/);
    expect(job.glazeGets).toBe(1);
    expect(sha(readFileSync(blank))).toBe(before);
    expect(readMarker(blank)).toBeNull();
    expect(lastReport(job).get('reason')).toBe('suit_digest_mismatch');
    rmSync(blank);
  });

  it('a bad budget is a usage error naming tips.spool, before any work is asked', async () => {
    const job = newJob(g2);
    const r = await runInstaller(job, freshDisk('disk-spool-bad.img'), join(work, `state-${job.id}`), ['--spool-budget', 'lots']);
    expect(r.code).toBe(1);
    expect(r.output).toMatch(/tips\.spool/);
    expect(job.workCalls).toBe(0);
  });
});

describe('T13 S12 S3 S4 Phase 1 installer refusals: reported with their reason, the disk byte-identical to before', () => {
  let disk: string;
  let j0: Job;

  beforeAll(async () => {
    disk = freshDisk('disk-refuse.img');
    j0 = newJob(g0);
    const r = await runInstaller(j0, disk, join(work, 'state-r0'));
    expect(r.code, r.output).toBe(0);
  });

  const tampered = (): Buffer => {
    const b = Buffer.from(g2.bytes);
    const at = MiB + randomInt(b.length - MiB);
    b[at] = b[at]! ^ 0xff;
    return b;
  };

  const cases: [string, () => Job, string][] = [
    ['tampered Glaze (one byte flipped after signing)', () => newJob({ ...g2, bytes: tampered() }, { announced: { size: g2.bytes.length, sha256: g2.sha256 } }), 'suit_digest_mismatch'],
    [
      'tampered manifest (the signed manifest replaced by another under the same signature)',
      () => {
        const signed = decodeEnvelope(manifestFor(g2, 10));
        const other = decodeEnvelope(manifestFor(g2, 99));
        other.authentication = signed.authentication;
        return newJob(g2, { manifest: encodeEnvelope(other) });
      },
      'suit_signature_invalid',
    ],
    ['manifest signed by a key the owner never registered', () => newJob(g2, { manifest: manifestFor(g2, 10, stranger.key) }), 'suit_unknown_key'],
    ['rollback: sequence below the last one Phase 1 installed', () => newJob(g2, { manifest: manifestFor(g2, 9), minSequence: 10 }), 'suit_rollback'],
    ['a manifest for another size than the Glaze the job pinned', () => newJob(g2, { manifest: manifestFor({ sha256: g2.sha256, size: g2.bytes.length + 1 }, 10) }), 'suit_size_mismatch'],
    ['a manifest for another Glaze than the job pinned', () => newJob(g2, { manifest: manifestFor(g1, 10) }), 'suit_digest_mismatch'],
    ['a manifest for another vendor than the metal', () => newJob(g2, { vendorId: '00112233-4455-6677-8899-aabbccddeeff' }), 'suit_vendor_mismatch'],
    ['a Glaze larger than the disk minus 1 MiB', () => newJob({ ...g2, bytes: Buffer.concat([g2.bytes, Buffer.alloc(DISK_SIZE)]) }, { announced: { size: g2.bytes.length + DISK_SIZE, sha256: sha(Buffer.concat([g2.bytes, Buffer.alloc(DISK_SIZE)])) } }), 'disk_too_small'],
  ];

  for (const [what, make, reason] of cases) {
    it(`${what} → ${reason}`, async () => {
      const before = sha(readFileSync(disk));
      const job = make();
      const r = await runInstaller(job, disk, join(work, `state-${job.id}`));
      expect(r.code, r.output).toBe(2);
      expect(sha(readFileSync(disk)), 'the disk changed').toBe(before);
      expect(readMarker(disk)?.sha256).toBe(g0.sha256);
      const rep = lastReport(job);
      expect(rep.get('result')).toBe('failed');
      expect(rep.get('reason')).toBe(reason);
      expect(rep.get('bytesWritten')).toBe(0);
      expect(String(rep.get('detail')).length).toBeGreaterThan(0);
    });
  }

  it('A6: a blank disk (claiming nothing) is also proven first: a tampered Glaze → suit_digest_mismatch, the disk byte-identical, no claim', async () => {
    const blank = freshDisk('disk-blank.img');
    const before = sha(readFileSync(blank));
    const job = newJob({ ...g2, bytes: tampered() }, { announced: { size: g2.bytes.length, sha256: g2.sha256 } });
    const r = await runInstaller(job, blank, join(work, `state-${job.id}`));
    expect(r.code, r.output).toBe(2);
    expect(r.output).toMatch(/checking the stream's digest before writing/);
    expect(sha(readFileSync(blank)), 'the blank disk changed').toBe(before);
    expect(readMarker(blank)).toBeNull();
    const rep = lastReport(job);
    expect(rep.get('result')).toBe('failed');
    expect(rep.get('reason')).toBe('suit_digest_mismatch');
    expect(rep.get('bytesWritten')).toBe(0);
    rmSync(blank);
  });

  it('a token the gateway does not know → no work, no report, exit 3, the disk unchanged', async () => {
    const before = sha(readFileSync(disk));
    const job = newJob(g2);
    const r = await runInstaller({ ...job, token: randomBytes(32).toString('base64url') }, disk, join(work, 'state-badtoken'));
    expect(r.code, r.output).toBe(3);
    expect(r.output).toMatch(/phase1_token_invalid/);
    expect(job.reports).toHaveLength(0);
    expect(sha(readFileSync(disk))).toBe(before);
  });
});

describe('T13 S12 A6 Phase 1 installer read-back: a disk that lies → verify_failed naming the byte and window, no claim, not bootable; healed, the same job installs', () => {
  // This kernel has no device-mapper (no dm-flakey) nor NBD, so the lying disk is QEMU's: a qcow2
  // image served by qemu-storage-daemon (a real peer) as a regular file through the kernel's FUSE,
  // its L2 table edited so two neighbouring guest clusters map to one host cluster — a counterfeit
  // flash drive's lie: both writes acknowledged, the later one overwrites the earlier, and the
  // disk returns the other cluster's bytes. The installer's O_DIRECT I/O goes kernel → FUSE → QEMU.
  const CLUSTER = 64 * 1024;
  let stop: (() => Promise<void>) | undefined;

  afterAll(async () => {
    await stop?.();
  });

  it('the aliased clusters lie: refused with verify_failed, the old claim wiped, the first MiB never written; with the L2 entry restored the same job installs and claims', async () => {
    const image = join(work, 'lying.qcow2');
    const disk = join(work, 'lying.img');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', `cluster_size=${CLUSTER},preallocation=metadata`, image, String(DISK_SIZE)]);
    // Two neighbouring clusters whose G1 bytes differ, inside the first window after the head
    // ([1 MiB, 9 MiB): the first window whatever its size), so one window's read-back must differ.
    let a = MiB / CLUSTER;
    const cluster = (c: number) => g1.bytes.subarray(c * CLUSTER, (c + 1) * CLUSTER);
    while (cluster(a).equals(cluster(a + 1))) a++;
    expect((a + 2) * CLUSTER).toBeLessThanOrEqual(9 * MiB);
    let k = 0;
    while (cluster(a)[k] === cluster(a + 1)[k]) k++;
    const ea = qcow2L2Entry(image, a);
    const eb = qcow2L2Entry(image, a + 1);
    expect(ea.entry).not.toBe(eb.entry);
    setQcow2L2Entry(image, ea.at, eb.entry);

    try {
      ({ stop } = await fuseExport(image, disk));
      // The disk holds other bytes and claims an older Glaze (G0), as a disk being reprovisioned does.
      const fd = openSync(disk, 'r+');
      writeSync(fd, randomBytes(4 * MiB), 0, 4 * MiB, 0);
      writeSync(fd, Buffer.from(encodeMarker({ glazeId: g0.id, sha256: g0.sha256, size: g0.size, sequence: 9, jobId: 'p1j_old', at: new Date().toISOString() })), 0, 4096, DISK_SIZE - 4096);
      closeSync(fd);
      expect(readMarker(disk)?.sha256).toBe(g0.sha256);
      const headBefore = sha(readFileSync(disk).subarray(0, MiB));

      const job = newJob(g1);
      const state = join(work, `state-${job.id}`);
      const r = await runInstaller(job, disk, state);
      expect(r.code, r.output).toBe(2);
      expect(r.output).toMatch(/install failed: verify_failed/);
      const rep = lastReport(job);
      expect(rep.get('result')).toBe('failed');
      expect(rep.get('reason')).toBe('verify_failed');
      // The first differing byte is in whichever of the two clusters was written first.
      const m = /differs from the streamed Glaze at byte (\d+) \(window of (\d+) bytes at (\d+)\)/.exec(String(rep.get('detail')));
      expect(m, String(rep.get('detail'))).not.toBeNull();
      expect([a * CLUSTER + k, (a + 1) * CLUSTER + k]).toContain(Number(m![1]));
      expect(Number(m![3])).toBe(MiB);
      expect(Number(rep.get('bytesWritten'))).toBeLessThan(g1.size);
      // The disk claims nothing (G0's claim wiped before the first byte, G1's never written) and is
      // not bootable as G1: its first MiB is the one it had.
      expect(readMarker(disk)).toBeNull();
      expect(sha(readFileSync(disk).subarray(0, MiB))).toBe(headBefore);

      // Healed (the cluster's own L2 entry back), the same job on the same disk installs.
      await stop();
      stop = undefined;
      setQcow2L2Entry(image, ea.at, ea.entry);
      ({ stop } = await fuseExport(image, disk));
      const again = await runInstaller(job, disk, state);
      expect(again.code, again.output).toBe(0);
      expect(lastReport(job).get('result')).toBe('installed');
      expect(assertHonestClaim(disk, [g1], 'healed')).toMatchObject({ glazeId: g1.id, sha256: g1.sha256, jobId: job.id });
    } finally {
      await stop?.();
      stop = undefined;
    }
  });
});
