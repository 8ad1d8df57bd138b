/**
 * `tips metal rollback` on the metal (T15, D2): a request the master lists in `GET /work` (the MQTT
 * message only made the agent pull) is carried out through the Glaze's install handler — `archive`
 * switches `current` back to the version kept beside it, `rootfs-ab` boots the previously committed
 * slot (its digest checked first). The Glaze rolled back from is then refused (so the next pull does
 * not install it again until the owner sets another one), the previous entry is what the profile
 * lists, and a signed report goes out: `rolled_back` / `rollback_requested`, or `failed` with a
 * `rollback_*` reason saying why it could not. Each request is carried out once: the request is
 * written down before the handler is called, and a kill (or the reboot a rootfs-ab rollback makes)
 * between the handler and the bookkeeping is finished at the next pull by asking the handler's state
 * whether it went back — never by rolling back a second time (that would go forward again).
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import { appsDir, rollbackArchive } from '../install/archive.ts';
import { lastOutcome, type RootfsAbHandler } from '../install/rootfs-ab.ts';
import { readSymlink } from '../install/switch.ts';
import type { InstalledGlaze } from '../state/agent-state.ts';
import type { InstallHandler } from '../install/types.ts';
import type { RollbackRequest } from '../master/metal-api.ts';
import type { AgentState } from '../state/agent-state.ts';
import type { InstallReport } from '../updates/report.ts';

export interface RollbackDeps {
  state: AgentState;
  handlers: Map<string, InstallHandler>;
  stateDir: string;
  log: Logger;
  now: () => Date;
  queueReport: (r: InstallReport) => void;
  aroundInstall?: <T>(fn: () => Promise<T>) => Promise<T>;
}

/** The handlers that can go back one version, and how. Resolves with what runs now (for the log). */
const ROLLBACKS: Record<string, (h: InstallHandler, stateDir: string, glazeName: string, log: Logger) => Promise<string>> = {
  archive: async (_h, stateDir, name, log) => rollbackArchive(stateDir, name, log),
  'rootfs-ab': async (h, stateDir, _name, log) => {
    const outcome = await (h as RootfsAbHandler).rollback(stateDir, log);
    if (outcome.result !== 'rolled_back') throw new Error(outcome.reason ?? `rootfs-ab rollback ended ${outcome.result}`);
    return `slot ${outcome.slot}`;
  },
};

/** After an interruption: did the handler already go back from `entry`? */
const WENT_BACK: Record<string, (stateDir: string, entry: InstalledGlaze, startedAt: string) => boolean> = {
  archive: (stateDir, entry) => {
    const now = readSymlink(join(appsDir(stateDir), entry.name, 'current'));
    return now !== undefined && now !== entry.version;
  },
  'rootfs-ab': (stateDir, entry, startedAt) => {
    const o = lastOutcome(stateDir);
    return !!o && o.result === 'rolled_back' && o.glaze?.id === entry.id && (o.reason ?? '').startsWith('manual rollback') && o.at >= startedAt;
  },
};

/** Resolves true when something was rolled back (the profile changed). */
export async function carryOutRollback(r: RollbackRequest, d: RollbackDeps): Promise<boolean> {
  const key = `${r.eventId}/${r.spaceId}/${r.glazeId}`;
  if (d.state.rollbackDone(key)) return false;
  const at = () => d.now().toISOString();
  const interrupted = d.state.rollbackInflight();
  const resumed = interrupted?.key === key ? interrupted : undefined;
  const entry = d.state.installed().find((g) => g.id === r.glazeId) ?? resumed?.entry;
  const fail = (reason: string, detail: string) => {
    d.log.warn({ event: 'rollback_refused', glaze: r.glazeId, space: r.spaceId, request: r.eventId, reason, detail }, `cannot roll back: ${detail}`);
    d.queueReport({ glazeId: r.glazeId, spaceId: r.spaceId, result: 'failed', reason, sequence: entry?.sequence ?? 0, at: at() });
    d.state.recordRollback(key);
    return false;
  };
  if (!entry) return fail('rollback_not_installed', `Glaze ${r.glazeId} is not what runs here`);
  const how = ROLLBACKS[entry.handler];
  const handler = d.handlers.get(entry.handler);
  if (!how || !handler) return fail('rollback_unsupported', `the ${entry.handler} handler keeps no previous version`);
  let now: string;
  if (resumed && WENT_BACK[entry.handler]?.(d.stateDir, entry, resumed.startedAt)) {
    now = 'previous version';
    d.log.info({ event: 'rollback_recovered', glaze: entry.id, request: r.eventId }, 'a rollback interrupted after the handler went back: finishing its bookkeeping');
  } else {
    d.log.info({ event: 'rollback_start', glaze: entry.id, name: entry.name, version: entry.version, handler: entry.handler, request: r.eventId }, `rolling ${entry.name} ${entry.version} back`);
    d.state.setRollbackInflight({ key, startedAt: at(), entry });
    try {
      const go = () => how(handler, d.stateDir, entry.name, d.log);
      now = await (d.aroundInstall ? d.aroundInstall(go) : go());
    } catch (e) {
      d.state.setRollbackInflight(undefined);
      return fail('rollback_unavailable', (e as Error).message.slice(0, 300));
    }
  }
  // Idempotent: a bookkeeping a kill cut short is not done twice.
  const prev = d.state.installed().some((g) => g.id === entry.id) ? d.state.restorePrevious(entry.name) : d.state.installed().find((g) => g.name === entry.name);
  d.state.recordRefused({ glazeId: entry.id, sha256: entry.sha256, spaceId: r.spaceId, reason: 'rolled_back_by_owner', detail: `rollback request ${r.eventId}`, at: at() });
  d.queueReport({ glazeId: entry.id, spaceId: r.spaceId, result: 'rolled_back', reason: 'rollback_requested', sequence: entry.sequence, at: at() });
  d.state.recordRollback(key);
  d.state.setRollbackInflight(undefined);
  d.log.info(
    { event: 'glaze_rolled_back', glaze: entry.id, name: entry.name, from: entry.version, to: prev?.version ?? null, running: now, request: r.eventId },
    `rolled ${entry.name} back from ${entry.version} to ${prev?.version ?? now}`,
  );
  return true;
}
