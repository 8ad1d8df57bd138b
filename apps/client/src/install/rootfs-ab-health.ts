/** The health check of a trial slot: a command (exit 0 = healthy) or an HTTP URL (2xx = healthy). */
import { spawn } from 'node:child_process';
import type { GlazeRef, HealthCheck, Slot } from './rootfs-ab-store.ts';

export interface HealthTarget {
  slot: Slot;
  device: string;
  glaze: GlazeRef;
}

export interface HealthOptions {
  timeoutMs: number;
  attempts: number;
  intervalMs: number;
}

export type HealthResult = { healthy: true } | { healthy: false; reason: string };

function runCommand(argv: string[], target: HealthTarget, timeoutMs: number): Promise<HealthResult> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      env: {
        ...process.env,
        TIPS_SLOT: target.slot,
        TIPS_SLOT_DEVICE: target.device,
        TIPS_GLAZE_ID: target.glaze.id,
        TIPS_GLAZE_VERSION: target.glaze.version,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString('utf8')).slice(-300);
    });
    child.on('error', (e) => resolve({ healthy: false, reason: `health check ${argv[0]} could not start: ${e.message}` }));
    child.on('close', (code, signal) => {
      if (code === 0) return resolve({ healthy: true });
      const how = signal ? `was killed (${signal}${signal === 'SIGKILL' ? `, timeout ${timeoutMs} ms` : ''})` : `exited ${code}`;
      resolve({ healthy: false, reason: `health check ${argv.join(' ')} ${how}${stderr.trim() ? `: ${stderr.trim()}` : ''}` });
    });
  });
}

async function getUrl(url: string, timeoutMs: number): Promise<HealthResult> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
    await res.body?.cancel();
    if (res.status >= 200 && res.status < 300) return { healthy: true };
    return { healthy: false, reason: `health check GET ${url} answered ${res.status}` };
  } catch (e) {
    return { healthy: false, reason: `health check GET ${url} failed: ${(e as Error).message}` };
  }
}

/** Runs the check up to `attempts` times, `intervalMs` apart; the last failure's reason is the verdict. */
export async function checkHealth(check: HealthCheck, target: HealthTarget, opts: HealthOptions): Promise<HealthResult> {
  let last: HealthResult = { healthy: false, reason: 'health check never ran' };
  for (let i = 0; i < opts.attempts; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, opts.intervalMs));
    last = 'command' in check ? await runCommand(check.command, target, opts.timeoutMs) : await getUrl(check.url, opts.timeoutMs);
    if (last.healthy) return last;
  }
  return last;
}
