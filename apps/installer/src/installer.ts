/**
 * One Phase 1 install (T13): work → verify the manifest → disk checks → stream the Glaze to the
 * disk (resumable, digest on the way, read back) → TIPS-C files → marker → signed report. Nothing
 * is written before the manifest is verified; a disk that claims a Glaze is written only after a
 * first pass proved the stream's digest; every refusal is reported.
 */
import { createHash } from 'node:crypto';
import { constants as bufferConstants } from 'node:buffer';
import { mkdirSync, readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { InstallerOptions } from './cmdline.ts';
import { configureInstalledSystem, refreshInstalledSystem } from './config.ts';
import { defaultDisk, diskSize, readMarker, writeMarker } from './disk.ts';
import { InstallerError, type ReportCode } from './errors.ts';
import { type Backoff, DEFAULT_BACKOFF, downloadResumable, errorOf, requestWithRetry, sleep } from './http.ts';
import { planWrite } from './plan.ts';
import { type InstallerKey, type InstallReport, loadOrCreateKey, signReport } from './report.ts';
import { verifyGlazeManifest } from './verify.ts';
import { parseWork, type Work } from './work.ts';
import { allocSpool, streamGlaze } from './write.ts';

export const EXIT = { installed: 0, usage: 1, refused: 2, unreported: 3 } as const;

export interface RunDeps {
  log: Logger;
  now?: () => Date;
  backoff?: Backoff;
  /** How long to wait between asks while the master says waiting_for_glaze. */
  waitForGlazeMs?: number;
}

async function askForWork(o: InstallerOptions, key: InstallerKey, d: RunDeps): Promise<Work> {
  const body = new TextEncoder().encode(JSON.stringify({ token: o.token, installerKey: key.publicRaw }));
  for (;;) {
    let res: Awaited<ReturnType<typeof requestWithRetry>>;
    try {
      res = await requestWithRetry('POST', `${o.bootUrl}/phase1/work`, { headers: { 'content-type': 'application/json' }, body }, d.log, 'work', d.backoff ?? DEFAULT_BACKOFF);
    } catch (e) {
      throw new InstallerError('work_unreachable', `POST ${o.bootUrl}/phase1/work: ${(e as Error).message}`);
    }
    if (res.status === 200) {
      try {
        return parseWork(JSON.parse(res.body.toString('utf8')));
      } catch (e) {
        if (e instanceof InstallerError) throw e;
        throw new InstallerError('work_refused', 'work: expected a JSON body');
      }
    }
    const err = errorOf(res);
    if (res.status === 409 && err.code === 'waiting_for_glaze') {
      d.log.info({ phase: 'work' }, 'the default Space has no Glaze yet; asking again later');
      await sleep(d.waitForGlazeMs ?? 30_000);
      continue;
    }
    throw new InstallerError('work_refused', `the gateway refused the work (${res.status} ${err.code}): ${err.message}`);
  }
}

async function sendReport(o: InstallerOptions, work: Work, key: InstallerKey, report: InstallReport, d: RunDeps): Promise<void> {
  const cose = signReport(report, key.privateKey);
  const res = await requestWithRetry('POST', `${o.bootUrl}${work.reportPath}`, { headers: { 'content-type': 'application/cose' }, body: cose }, d.log, 'report', d.backoff ?? DEFAULT_BACKOFF).catch((e: Error) => {
    throw new InstallerError('report_failed', `POST ${work.reportPath}: ${e.message}`);
  });
  if (res.status < 200 || res.status > 299) {
    const err = errorOf(res);
    throw new InstallerError('report_failed', `the gateway refused the report (${res.status} ${err.code}): ${err.message}`);
  }
  d.log.info({ phase: 'report', result: report.result, reason: report.reason }, 'report sent');
}

/**
 * Streams the Glaze once through SHA-256 (resumable within the run): the pass every disk gets
 * before a byte is written, so a tampered stream leaves it byte-identical. With `spool`, the bytes
 * are kept in it (the Glaze fits the RAM budget) and the write goes from there; without, nothing is
 * kept and the write downloads the Glaze again.
 */
async function verifyStream(o: InstallerOptions, work: Work, d: RunDeps, spool?: Buffer): Promise<void> {
  const h = createHash('sha256');
  let at = 0;
  await downloadResumable({
    url: `${o.bootUrl}${work.glazePath}`,
    size: work.glaze.size,
    from: 0,
    log: d.log,
    ...(d.backoff ? { backoff: d.backoff } : {}),
    // In order from byte 0: a resumed download goes on from the last byte the sink took (HTTP Range).
    sink: async (chunk) => {
      h.update(chunk);
      if (spool) chunk.copy(spool, at);
      at += chunk.length;
    },
  });
  const got = h.digest('hex');
  if (got !== work.glaze.sha256) throw new InstallerError('suit_digest_mismatch', `the Glaze the gateway serves has SHA-256 ${got}; the signed manifest says ${work.glaze.sha256} (nothing written)`);
}

/** MemAvailable from /proc/meminfo, in bytes (0 if unreadable: then nothing is spooled by share). */
export function memAvailable(meminfo = '/proc/meminfo'): number {
  try {
    const kb = /^MemAvailable:\s+(\d+) kB$/m.exec(readFileSync(meminfo, 'utf8'))?.[1];
    return kb ? Number(kb) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** The RAM the verify pass may keep the Glaze in, in bytes (never above what one Buffer can hold). */
export function spoolBytes(budget: InstallerOptions['spoolBudget'], available = memAvailable()): number {
  const b = 'bytes' in budget ? budget.bytes : Math.floor((available * budget.percent) / 100);
  return Math.min(b, bufferConstants.MAX_LENGTH);
}

/** Runs the installer; resolves with the process exit code (EXIT). */
export async function runInstaller(o: InstallerOptions, d: RunDeps): Promise<number> {
  const log = d.log;
  const now = d.now ?? (() => new Date());
  mkdirSync(o.stateDir, { recursive: true, mode: 0o700 });
  const key = loadOrCreateKey(o.stateDir);
  const work = await askForWork(o, key, d);
  if (o.jobId && work.jobId !== o.jobId) log.warn({ phase: 'work', expected: o.jobId, got: work.jobId }, 'the gateway answered for another job than tips.job names');
  log.info({ phase: 'work', jobId: work.jobId, metal: work.metal.name, glaze: work.glaze.id, size: work.glaze.size, sha256: work.glaze.sha256 }, 'work received');

  const disk = o.disk ?? defaultDisk();
  let bytesWritten = 0;
  const report = (result: 'installed' | 'failed', reason: ReportCode | null, detail: string | null): InstallReport => ({
    jobId: work.jobId,
    result,
    reason,
    detail,
    glazeSha256: work.glaze.sha256,
    bytesWritten,
    disk: disk ?? '',
    at: now().toISOString(),
  });

  try {
    const verified = verifyGlazeManifest(work);
    log.info({ phase: 'verify', sequence: verified.sequence, signedBy: verified.keyId }, 'manifest verified');
    if (!disk) throw new InstallerError('write_failed', 'no target disk: tips.disk is not set and /sys/block has no non-removable disk');
    let size: number;
    try {
      size = diskSize(disk);
    } catch (e) {
      throw new InstallerError('write_failed', `${disk}: ${(e as Error).message}`);
    }
    const plan = planWrite(size, work.glaze.size);
    const marker = await readMarker(disk, size);
    if (marker.ok && marker.marker.sha256 === work.glaze.sha256) {
      log.info({ phase: 'marker', disk, jobId: marker.marker.jobId }, 'the disk already holds this Glaze (valid marker); reporting only');
      await refreshInstalledSystem({ disk, work, stateDir: o.stateDir, log });
      await sendReport(o, work, key, report('installed', null, `already installed by job ${marker.marker.jobId} at ${marker.marker.at}`), d);
      return EXIT.installed;
    }
    // T13/A6: a refusal leaves the disk untouched, and the stream's digest is known only after its last
    // byte: the whole stream is proven first, then written. A Glaze that fits the RAM budget
    // (tips.spool, default 25 % of MemAvailable) is kept by that pass and written from RAM: one
    // download, one SHA-256. A larger one is hashed and dropped, then downloaded again for the write
    // (hashed again on the way); the gateway serves it from its LAN cache, so the second pass costs
    // LAN time, not the uplink's.
    const budget = spoolBytes(o.spoolBudget);
    const spool = work.glaze.size > 0 && work.glaze.size <= budget ? allocSpool(work.glaze.size) : undefined;
    log.info(
      { phase: 'download', url: `${o.bootUrl}${work.glazePath}`, holds: marker.ok ? marker.marker.sha256 : null, spool: spool ? 'ram' : 'none', spoolBudget: budget },
      spool ? "checking the stream's digest before writing (kept in RAM)" : "checking the stream's digest before writing (not kept: larger than the RAM budget; downloaded again to write)",
    );
    await verifyStream(o, work, d, spool);
    log.info({ phase: 'download', sha256: work.glaze.sha256 }, 'Glaze digest matches the signed manifest');
    log.info({ phase: 'write', disk, size: work.glaze.size, diskSize: size, url: `${o.bootUrl}${work.glazePath}` }, 'writing the disk');
    let lastLog = 0;
    const result = await streamGlaze({
      disk,
      plan,
      sha256: work.glaze.sha256,
      ...(spool
        ? { spool }
        : { feed: (sink) => downloadResumable({ url: `${o.bootUrl}${work.glazePath}`, size: work.glaze.size, from: 0, log, ...(d.backoff ? { backoff: d.backoff } : {}), sink }) }),
      progress: (stage, bytes) => {
        bytesWritten = bytes;
        const t = Date.now();
        if (stage === 'body' && t - lastLog < 1000) return;
        lastLog = t;
        log.info({ phase: 'write', stage, bytes, size: work.glaze.size, percent: Math.floor((bytes / work.glaze.size) * 100) }, 'write progress');
      },
    });
    bytesWritten = result.bytesWritten;
    log.info({ phase: 'verify', disk, sha256: work.glaze.sha256, readBack: result.readBack }, 'read-back digest matches');
    await configureInstalledSystem({ disk, work, stateDir: o.stateDir, log });
    await writeMarker(disk, plan, { glazeId: work.glaze.id, sha256: work.glaze.sha256, size: work.glaze.size, sequence: verified.sequence, jobId: work.jobId, at: now().toISOString() });
    log.info({ phase: 'marker', disk }, 'marker written: the disk claims the Glaze');
    await sendReport(o, work, key, report('installed', null, null), d);
    return EXIT.installed;
  } catch (e) {
    if (!(e instanceof InstallerError) || !e.reportable) throw e;
    log.error({ phase: 'refused', reason: e.code, detail: e.message }, `install failed: ${e.code}`);
    await sendReport(o, work, key, report('failed', e.code as ReportCode, e.message), d);
    return EXIT.refused;
  }
}
