/**
 * The `tips-client run` loop (T15, S9, S10, T16): cycles of the agent (Phase 2, then Phase 3 and the
 * rollback requests), woken by
 *   - an MQTT hint on the metal's topic (push; the broker and topic come from `GET /work`): the
 *     agent pulls at once — hybrid = notify, then pull and verify;
 *   - a timer: every `intervalMs` while subscribed (a safety net), every `pollIntervalMs` while push
 *     is unavailable or off (pull alone then delivers everything);
 *   - a reconnection of the subscription (what was published meanwhile is fetched by that pull).
 * The tamper watch (T16) runs beside it from the start and reports through the agent.
 * Failures of one cycle are logged and retried at the next; an authentication failure stops
 * Phases 2 and 3 (the agent records it) and the subscription with them.
 */
import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { ClientError } from '../errors.ts';
import { writeFileDurably } from '../state/files.ts';
import { startTamperWatch, type TamperWatch } from '../tamper/index.ts';
import type { PushStatus } from '../state/agent-state.ts';
import type { Agent } from './agent.ts';
import { type PushHint, type PushListener, startPush } from './push.ts';

export interface RunLoopOptions {
  agent: Agent;
  tipsId: string;
  stateDir: string;
  log: Logger;
  /** Between cycles while the MQTT subscription is up. */
  intervalMs: number;
  /** Between cycles while push is unavailable or off. */
  pollIntervalMs: number;
  /** Subscribe to Phase 3 hints when the master names a broker (default true). */
  push: boolean;
  /** T16; absent: no tamper watch. */
  tamper?: { managedPaths: string[]; dpkgRoot: string; fullCheckIntervalMs?: number };
  /** Resolves when the loop should end (SIGTERM). */
  stopped: Promise<void>;
}

/**
 * The key the tamper baseline is signed with: its own (made once, 0600), not the certificate key —
 * a re-enrollment changes that, and a baseline that stopped verifying would read as tampering.
 */
export function baselineKey(stateDir: string): KeyObject {
  const file = join(stateDir, 'tamper', 'baseline-key.pem');
  if (!existsSync(file)) writeFileDurably(file, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 0o600);
  return createPrivateKey(readFileSync(file));
}

export async function runLoop(o: RunLoopOptions): Promise<void> {
  const { agent, log } = o;
  let stop = false;
  let wake: (() => void) | undefined;
  let woken = false;
  const wakeUp = () => {
    woken = true;
    wake?.();
  };
  void o.stopped.then(() => {
    stop = true;
    wakeUp();
  });

  let watch: TamperWatch | undefined;
  if (o.tamper) {
    watch = await startTamperWatch({
      stateDir: o.stateDir,
      managedPaths: o.tamper.managedPaths,
      dpkgRoot: o.tamper.dpkgRoot,
      key: baselineKey(o.stateDir),
      fullCheckIntervalMs: o.tamper.fullCheckIntervalMs,
      log,
      onTamper: (changes) => agent.reportTamper(changes),
    });
    const w = watch;
    agent.installGuard = (install) => w.whileInstalling(install);
    log.info({ event: 'tamper_watch_started', managedPaths: o.tamper.managedPaths, dpkgRoot: o.tamper.dpkgRoot, directories: watch.watchedDirectories().length }, 'tamper watch running');
  }

  let push: PushListener | undefined;
  let pushKey = '';
  // `tips-client status` reads what the loop last saw: the server that answers and the push state.
  let pushStatus: PushStatus | null = null;
  let written = '';
  const writeStatus = () => {
    const next = { server: agent.server(), push: pushStatus };
    const key = JSON.stringify(next);
    if (key === written) return;
    written = key;
    try {
      agent.state.updateStatus(next);
    } catch (e) {
      log.warn({ event: 'status_write_failed', message: (e as Error).message }, 'cannot record the run status');
    }
  };
  const notBefore = new Set<NodeJS.Timeout>();
  const onHint = (h: PushHint) => {
    if (pushStatus) {
      pushStatus = { ...pushStatus, lastHintAt: new Date().toISOString() };
      writeStatus();
    }
    const at = h.notBefore ? Date.parse(h.notBefore) - Date.now() : 0;
    if (at <= 0) return wakeUp();
    // The schedule of the notification: pull when it says, not before.
    const t = setTimeout(() => {
      notBefore.delete(t);
      wakeUp();
    }, Math.min(at, 2 ** 31 - 1));
    notBefore.add(t);
  };
  const syncPush = async () => {
    const n = o.push && !agent.state.status().stopped ? agent.notify : null;
    const key = n ? `${n.url} ${n.topic}` : '';
    if (key === pushKey) return;
    await push?.stop();
    push = undefined;
    pushKey = key;
    pushStatus = n ? { url: n.url, topic: n.topic, state: 'connecting', since: new Date().toISOString(), why: null, lastHintAt: null } : null;
    writeStatus();
    if (!n) return;
    push = startPush({
      url: n.url,
      topic: n.topic,
      tls: () => agent.tlsMaterial(),
      clientId: `${o.tipsId}-${process.pid}`,
      log,
      onHint,
      onState: (subscribed, why) => {
        if (!pushStatus) return;
        const state = subscribed ? 'subscribed' : 'connecting';
        if (pushStatus.state !== state || pushStatus.why !== why) pushStatus = { ...pushStatus, state, why, since: pushStatus.state === state ? pushStatus.since : new Date().toISOString() };
        writeStatus();
      },
      // Pull what was published before the subscription took (at start, and after every reconnection).
      onSubscribed: wakeUp,
    });
  };

  log.info({ event: 'started', tipsId: o.tipsId, intervalMs: o.intervalMs, pollIntervalMs: o.pollIntervalMs, push: o.push }, 'tips-client running');
  try {
    while (!stop) {
      woken = false;
      try {
        await agent.cycle();
      } catch (e) {
        log.warn({ event: 'cycle_failed', code: (e as ClientError).remoteCode ?? (e as ClientError).code, message: (e as Error).message }, 'cycle failed; next try after the interval');
      }
      // S14: a retired metal has wiped its credentials: the loop ends for good.
      if (agent.retired) break;
      await syncPush().catch((e) => log.warn({ event: 'push_failed', message: (e as Error).message }, 'cannot start the MQTT subscription'));
      writeStatus();
      if (stop) break;
      // A hint that came during the cycle is pulled now, not after the interval.
      if (woken) continue;
      const ms = push?.subscribed ? o.intervalMs : o.pollIntervalMs;
      await new Promise<void>((r) => {
        const timer = setTimeout(r, ms);
        wake = () => {
          clearTimeout(timer);
          r();
        };
      });
      wake = undefined;
    }
  } finally {
    for (const t of notBefore) clearTimeout(t);
    watch?.stop();
    await push?.stop();
  }
}
