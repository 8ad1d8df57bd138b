/**
 * What the installer is told to do: `tips.boot=`, `tips.job=`, `tips.token=`, `tips.disk=` on the
 * kernel command line (the per-metal iPXE script puts them there, A3), overridden by flags so tests
 * and operators can run it outside the in-memory environment.
 */
import { InstallerError } from './errors.ts';

export interface InstallerOptions {
  /** The gateway's boot base, e.g. http://192.168.50.1:8080 (no trailing slash). */
  bootUrl: string;
  jobId: string | null;
  token: string;
  /** Target disk; null = the first non-removable disk of /sys/block. */
  disk: string | null;
  /** Where the installer keeps its key and the downloaded Glaze (RAM in the initramfs). */
  stateDir: string;
  reboot: boolean;
  /**
   * RAM the verify pass may keep the Glaze in (`tips.spool=` / `--spool-budget`): a Glaze that fits
   * is downloaded once, hashed, kept, and written from RAM; a larger one is downloaded twice (hashed,
   * then written and hashed again). Bytes, or a share of MemAvailable at start; 0 = never spool.
   */
  spoolBudget: { bytes: number } | { percent: number };
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
}

export const DEFAULT_STATE_DIR = '/run/tips-installer';
const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;

/** Splits a kernel command line into words; double quotes group (as the kernel's own parser does). */
export function splitCmdline(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  let has = false;
  for (const ch of line) {
    if (ch === '"') {
      quoted = !quoted;
      has = true;
    } else if (!quoted && /\s/.test(ch)) {
      if (has) out.push(cur);
      cur = '';
      has = false;
    } else {
      cur += ch;
      has = true;
    }
  }
  if (has) out.push(cur);
  return out;
}

/** The `tips.*` parameters of a kernel command line (later ones win, as for the kernel). */
export function tipsParams(line: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const w of splitCmdline(line)) {
    const eq = w.indexOf('=');
    if (!w.startsWith('tips.') || eq < 0) continue;
    m.set(w.slice(5, eq), w.slice(eq + 1));
  }
  return m;
}

const FLAGS: Record<string, string> = {
  '--boot-url': 'boot',
  '--job': 'job',
  '--token': 'token',
  '--disk': 'disk',
  '--state-dir': 'state',
  '--log-level': 'log',
  '--spool-budget': 'spool',
};

export const DEFAULT_SPOOL_PERCENT = 25;
const UNITS: Record<string, number> = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30 };

/** `25%` (of MemAvailable), `1536M`, `2G`, `0` (never spool). */
export function parseSpoolBudget(v: string): InstallerOptions['spoolBudget'] {
  const pct = /^(\d{1,3})%$/.exec(v);
  if (pct) {
    if (Number(pct[1]) > 90) bad('tips.spool', `at most 90% of MemAvailable, came "${v}"`);
    return { percent: Number(pct[1]) };
  }
  const abs = /^(\d{1,15})([KMG]?)$/.exec(v);
  if (!abs) bad('tips.spool', `expected a share of MemAvailable (25%) or bytes with an optional K, M or G suffix (1536M), came "${v}"`);
  return { bytes: Number(abs[1]) * UNITS[abs[2]!]! };
}

function bad(field: string, message: string): never {
  throw new InstallerError('bad_cmdline', `${field}: ${message}`);
}

/**
 * Options from the kernel command line and argv (flags win). `--cmdline <text>` replaces the
 * command line read from /proc (tests). Throws InstallerError('bad_cmdline') naming the field.
 */
export function parseOptions(argv: readonly string[], procCmdline: string): InstallerOptions {
  const flags = new Map<string, string>();
  let reboot = true;
  let cmdline = procCmdline;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--no-reboot') {
      reboot = false;
      continue;
    }
    const [name, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = inline ?? argv[++i];
    if (name === '--cmdline') {
      if (value === undefined) bad('--cmdline', 'expected a value');
      cmdline = value;
      continue;
    }
    const key = FLAGS[name];
    if (!key) bad(name, 'unknown flag (expected --boot-url, --job, --token, --disk, --state-dir, --log-level, --spool-budget, --cmdline, --no-reboot)');
    if (value === undefined || value.startsWith('--')) bad(name, 'expected a value');
    flags.set(key, value);
  }
  const params = tipsParams(cmdline);
  const pick = (k: string): string | undefined => flags.get(k) ?? params.get(k);

  const boot = pick('boot');
  if (!boot) bad('tips.boot', 'missing (the gateway boot URL, e.g. tips.boot=http://192.168.50.1:8080)');
  let url: URL;
  try {
    url = new URL(boot);
  } catch {
    return bad('tips.boot', `expected an http(s) URL, came "${boot}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') bad('tips.boot', `expected an http(s) URL, came "${boot}"`);
  if (url.search || url.hash || url.username) bad('tips.boot', 'expected a base URL without query, fragment or credentials');

  const token = pick('token');
  if (!token) bad('tips.token', 'missing (the one-job token from the iPXE script)');
  if (!/^[A-Za-z0-9_-]{16,256}$/.test(token)) bad('tips.token', 'expected 16–256 base64url characters');

  const job = pick('job') ?? null;
  if (job !== null && !/^[A-Za-z0-9_-]{1,64}$/.test(job)) bad('tips.job', 'expected a job ID (letters, digits, _ and -)');

  const disk = pick('disk') ?? null;
  if (disk !== null && !/^\/[^\0]*$/.test(disk)) bad('tips.disk', `expected an absolute path such as /dev/vda, came "${disk}"`);

  const stateDir = flags.get('state') ?? DEFAULT_STATE_DIR;
  if (!stateDir.startsWith('/')) bad('--state-dir', 'expected an absolute path');

  const log = flags.get('log') ?? params.get('loglevel') ?? 'info';
  if (!(LEVELS as readonly string[]).includes(log)) bad('--log-level', `expected one of ${LEVELS.join(', ')}`);

  const spool = pick('spool');
  const spoolBudget = spool === undefined ? { percent: DEFAULT_SPOOL_PERCENT } : parseSpoolBudget(spool);

  return {
    spoolBudget,
    bootUrl: url.toString().replace(/\/+$/, ''),
    jobId: job,
    token,
    disk,
    stateDir,
    reboot,
    logLevel: log as InstallerOptions['logLevel'],
  };
}
