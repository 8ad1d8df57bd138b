import { encodeBase32, type GlazeId, InvalidValueError, type Mac, type OwnerId, type SpaceId, type TipsId } from '@tips/core';

/**
 * Phase 1 provisioning (T13, the paper's Fig. 6): one job per attempt to bring a metal from bare
 * metal to its default Space's Glaze. A metal has at most one open job; finished ones stay as history.
 */
export const ENGINES = ['builtin', 'tinkerbell'] as const;
export type Engine = (typeof ENGINES)[number];
export const DEFAULT_ENGINE: Engine = 'builtin';

export function parseEngine(value: unknown, field = 'engine'): Engine {
  if (typeof value !== 'string' || !(ENGINES as readonly string[]).includes(value)) {
    throw new InvalidValueError(field, `engine is one of ${ENGINES.join(', ')}, got ${JSON.stringify(String(value).slice(0, 32))}`);
  }
  return value as Engine;
}

/**
 * A Space's rule choosing the engine of the metals it provisions by what they are (A5, refined):
 * `arch=arm64:tinkerbell` — the metal whose label `arch` is `arm64` gets the tinkerbell engine. The
 * key is any label key (`arch` is the label metals carry their architecture in, e.g. from their
 * inventory or `tips metal set --label arch=arm64`). First matching rule wins.
 */
export interface EngineRule {
  /** `<label key>=<value>` */
  match: string;
  engine: Engine;
}
export const MAX_ENGINE_RULES = 16;
const RULE_MATCH = /^([A-Za-z0-9][A-Za-z0-9._/-]{0,62})=([^\s=]{1,128})$/;

export function parseEngineRules(value: unknown, field = 'engineRules'): EngineRule[] {
  if (!Array.isArray(value)) throw new InvalidValueError(field, 'engine rules are a list of { match: "<label>=<value>", engine }');
  if (value.length > MAX_ENGINE_RULES) throw new InvalidValueError(field, `at most ${MAX_ENGINE_RULES} engine rules`);
  const seen = new Set<string>();
  return value.map((r, i) => {
    const at = `${field}[${i}]`;
    if (typeof r !== 'object' || r === null) throw new InvalidValueError(at, 'an engine rule is { match, engine }');
    const { match, engine } = r as { match?: unknown; engine?: unknown };
    if (typeof match !== 'string' || !RULE_MATCH.test(match)) throw new InvalidValueError(`${at}.match`, `match is "<label key>=<value>" (e.g. arch=arm64), got ${JSON.stringify(String(match).slice(0, 64))}`);
    if (seen.has(match)) throw new InvalidValueError(`${at}.match`, `"${match}" appears twice`);
    seen.add(match);
    return { match, engine: parseEngine(engine, `${at}.engine`) };
  });
}

/** `<key>=<value>:<engine>` (the CLI's `--engine-for`) → a rule. */
export function parseEngineRuleText(text: string, field = 'engine-for'): EngineRule {
  const at = text.lastIndexOf(':');
  if (at < 0) throw new InvalidValueError(field, `expected <label>=<value>:<engine> (e.g. arch=arm64:tinkerbell), got "${text.slice(0, 64)}"`);
  return parseEngineRules([{ match: text.slice(0, at), engine: text.slice(at + 1) }], field)[0]!;
}

/**
 * The engine of a metal (A5): its own setting, else the first of its default Space's rules that
 * its labels match, else the Space's engine.
 */
export function chooseEngine(metal: { engine: Engine | null; labels: Record<string, string> }, space: { engine: Engine; engineRules: readonly EngineRule[] } | undefined): Engine {
  if (metal.engine) return metal.engine;
  if (!space) return DEFAULT_ENGINE;
  for (const r of space.engineRules) {
    const eq = r.match.indexOf('=');
    if (metal.labels[r.match.slice(0, eq)] === r.match.slice(eq + 1)) return r.engine;
  }
  return space.engine;
}

export const JOB_STATES = ['waiting_for_glaze', 'queued', 'booting', 'installing', 'installed', 'failed'] as const;
export type JobState = (typeof JOB_STATES)[number];
export const OPEN_STATES: readonly JobState[] = ['waiting_for_glaze', 'queued', 'booting', 'installing'];
export const isOpen = (s: JobState): boolean => OPEN_STATES.includes(s);

export function parseJobState(value: string, field = 'state'): JobState {
  if (!(JOB_STATES as readonly string[]).includes(value)) throw new InvalidValueError(field, `state is one of ${JOB_STATES.join(', ')}`);
  return value as JobState;
}

/** Phase 1 job IDs: `p1j_` + 128 random bits in Crockford base32 (the core ID shape, own prefix). */
export type JobId = string & { readonly __brand: 'Phase1JobId' };
const JOB_ID = /^p1j_[0-9a-hjkmnp-tv-z]{26}$/;
export const newJobId = (random16: Uint8Array): JobId => `p1j_${encodeBase32(random16)}` as JobId;
export function parseJobId(value: string, field = 'job'): JobId {
  if (!JOB_ID.test(value)) throw new InvalidValueError(field, `expected a Phase 1 job ID like p1j_<26 base32 chars>, got "${value.slice(0, 64)}"`);
  return value as JobId;
}

/** The Glaze a job installs, pinned when the job got it: a later change of the Space's Glaze never reaches a running job. */
export interface PinnedGlaze {
  id: GlazeId;
  name: string;
  size: number;
  sha256: string;
  /** The operator-signed SUIT envelope at pin time, and its sequence number. */
  manifest: Uint8Array;
  sequence: number;
}

export interface Transition {
  state: JobState;
  at: string;
  reason: string | null;
}

/** A Phase 1 job (T13). */
export interface Phase1Job {
  id: JobId;
  ownerId: OwnerId;
  metalId: TipsId;
  /** The interface the metal is provisioned over (its default Space's one PXE interface). */
  interfaceName: string;
  mac: Mac;
  spaceId: SpaceId;
  engine: Engine;
  state: JobState;
  reason: string | null;
  detail: string | null;
  glaze: PinnedGlaze | null;
  /** SHA-256 hex of the current boot token (builtin engine); null once claimed or never issued. */
  tokenHash: string | null;
  /** base64url raw Ed25519 public key the installer bound at its first `work`. */
  installerKey: string | null;
  enrollmentSecretId: string | null;
  /** Every state the job went through, with when and why. */
  transitions: Transition[];
  /** The installer's signed report (COSE_Sign1 bytes) and its decoded payload. */
  report: { cose: Uint8Array; payload: InstallerReport; receivedAt: string } | null;
  createdAt: string;
  updatedAt: string;
}

/** The installer report payload (CONTRACT A4). */
export interface InstallerReport {
  jobId: string;
  result: 'installed' | 'failed';
  reason: string | null;
  detail: string | null;
  glazeSha256: string;
  bytesWritten: number;
  disk: string;
  at: string;
}


export interface JobQuery {
  metalId?: TipsId;
  state?: JobState;
}

/** What `work` answers the installer (CONTRACT A3). */
export interface Work {
  jobId: JobId;
  metal: { id: TipsId; name: string; tipsId: TipsId };
  glaze: { id: GlazeId; name: string; version: string; size: number; sha256: string };
  manifest: string;
  trustedKeys: { id: string; name: string; alg: string; publicKeyPem: string }[];
  minSequence: number;
  vendorId: string | null;
  classId: string | null;
  glazePath: string;
  reportPath: string;
  enrollment: { secretId: string; secret: string; estUrl: string; masterUrl: string; caPem: string };
}

/** Longest report body the master takes (CONTRACT A2: ≤ 64 KiB). */
export const MAX_REPORT_BYTES = 64 * 1024;
/** The enrollment secret a job hands its installer lives this long (one use). */
export const ENROLLMENT_SECRET_TTL_MINUTES = 7 * 24 * 60;
