/**
 * T16 tamper detection on the metal: compares what is on disk with the signed-off baseline of what
 * TIPS installed. inotify (fs.watch on every managed directory and the dpkg admin dir) triggers a
 * check within `debounceMs`; a full check also runs every `fullCheckIntervalMs` (inotify misses
 * changes made while the agent was down, on another mount, or by raw block writes). A change list
 * that was not reported yet goes to `onTamper` (the agent posts it to `POST /api/metal/v1/tamper`);
 * a failed report is retried.
 */
import type { KeyObject } from 'node:crypto';
import { type FSWatcher, watch } from 'node:fs';
import type { Logger } from 'pino';
import { baselinePath, readBaseline, writeBaseline } from './baseline.ts';
import { diffSnapshots, type TamperChange } from './diff.ts';
import { HashCache, type Snapshot, takeSnapshot, watchedDirectories } from './snapshot.ts';

export type { TamperChange } from './diff.ts';

export interface TamperWatchOptions {
  stateDir: string;
  /** Files and directories TIPS manages (absolute); a directory covers everything under it. */
  managedPaths: string[];
  /** The root whose var/lib/dpkg holds the package database; default `/`. */
  dpkgRoot?: string;
  /** Receives every new change list; reject to have it retried. */
  onTamper: (changes: TamperChange[]) => Promise<void> | void;
  /** Periodic full check; 0 turns it off. Default 60 s. */
  fullCheckIntervalMs?: number;
  /** Quiet time after a file-system event before the check. Default 300 ms. */
  debounceMs?: number;
  /** Watch with inotify (fs.watch); false: only the periodic full check (file systems without inotify). Default true. */
  inotify?: boolean;
  /** Delay before a failed report is tried again. Default 5 s. */
  retryMs?: number;
  /** The metal's private key: the baseline is signed with it and must verify. */
  key?: KeyObject;
  log?: Logger;
}

export interface TamperWatch {
  /** Checks now; resolves with the current change list (empty: as installed). */
  check(): Promise<TamperChange[]>;
  /** TIPS changed the managed state itself: what is on disk now becomes the baseline. */
  signOff(): Promise<void>;
  /** Runs a TIPS install with reporting held, then signs off its result. */
  whileInstalling<T>(install: () => Promise<T>): Promise<T>;
  /** The directories under inotify watch now. */
  watchedDirectories(): string[];
  stop(): void;
}

const changeKey = (c: TamperChange) => `${c.kind}\u0000${c.path}\u0000${c.detail}`;

export async function startTamperWatch(opts: TamperWatchOptions): Promise<TamperWatch> {
  const dpkgRoot = opts.dpkgRoot ?? '/';
  const fullCheckIntervalMs = opts.fullCheckIntervalMs ?? 60_000;
  const debounceMs = opts.debounceMs ?? 300;
  const retryMs = opts.retryMs ?? 5_000;
  const log = opts.log;
  const cache = new HashCache();
  const watchers = new Map<string, FSWatcher>();
  const snapshot = (): Snapshot => takeSnapshot({ managedPaths: opts.managedPaths, dpkgRoot, cache });

  let stopped = false;
  let installing = 0;
  let reported = new Set<string>();
  let debounce: NodeJS.Timeout | undefined;
  let retry: NodeJS.Timeout | undefined;
  let running: Promise<TamperChange[]> | undefined;
  let again = false;

  const loaded = readBaseline(opts.stateDir, opts.key);
  if (loaded.state === 'missing') {
    writeBaseline(opts.stateDir, snapshot(), opts.key);
    log?.info({ path: baselinePath(opts.stateDir) }, 'tamper: baseline recorded (first start)');
  }

  function syncWatchers(): void {
    if (opts.inotify === false) return;
    const want = new Set(watchedDirectories(opts.managedPaths, dpkgRoot));
    for (const [dir, w] of watchers) {
      if (!want.has(dir)) {
        w.close();
        watchers.delete(dir);
      }
    }
    for (const dir of want) {
      if (watchers.has(dir)) continue;
      try {
        const w = watch(dir, { persistent: true }, () => schedule());
        w.on('error', () => {
          w.close();
          watchers.delete(dir);
          schedule();
        });
        watchers.set(dir, w);
      } catch (e) {
        // A directory that does not exist (yet): its parent is watched, or the full check finds it.
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') log?.warn({ dir, err: (e as Error).message }, 'tamper: cannot watch');
      }
    }
  }

  /** A check at most `delay` after the first event: a file written without pause cannot postpone it. */
  function schedule(delay = debounceMs): void {
    if (stopped) return;
    if (debounce && delay > 0) return;
    clearTimeout(debounce);
    debounce = setTimeout(() => {
      debounce = undefined;
      void runCheck().catch((e) => log?.error({ err: (e as Error).message }, 'tamper: check failed'));
    }, delay);
  }

  async function compare(): Promise<TamperChange[]> {
    const current = readBaseline(opts.stateDir, opts.key);
    if (current.state !== 'ok') {
      const reason = current.state === 'missing' ? 'the tamper baseline was removed' : current.reason;
      return [{ path: baselinePath(opts.stateDir), kind: current.state === 'missing' ? 'removed' : 'modified', detail: reason }];
    }
    return diffSnapshots(current.baseline.snapshot, snapshot());
  }

  async function report(changes: TamperChange[]): Promise<void> {
    if (changes.length === 0) {
      reported = new Set();
      return;
    }
    const keys = new Set(changes.map(changeKey));
    if ([...keys].every((k) => reported.has(k))) return;
    log?.warn({ changes }, 'tamper: %d change(s) outside TIPS', changes.length);
    try {
      await opts.onTamper(changes);
      reported = keys;
    } catch (e) {
      log?.error({ err: (e as Error).message }, 'tamper: report failed, retrying');
      clearTimeout(retry);
      if (!stopped) retry = setTimeout(() => schedule(0), retryMs);
    }
  }

  function runCheck(): Promise<TamperChange[]> {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        let changes: TamperChange[];
        do {
          again = false;
          changes = await compare();
          syncWatchers();
          if (installing === 0 && !stopped) await report(changes);
        } while (again && !stopped);
        return changes;
      } finally {
        running = undefined;
      }
    })();
    return running;
  }

  async function signOff(): Promise<void> {
    if (running) await running.catch(() => undefined);
    cache.clear();
    writeBaseline(opts.stateDir, snapshot(), opts.key);
    reported = new Set();
    syncWatchers();
    log?.info('tamper: baseline signed off');
  }

  syncWatchers();
  const interval = fullCheckIntervalMs > 0 ? setInterval(() => schedule(0), fullCheckIntervalMs) : undefined;
  // Whatever changed while the agent was not running is reported at start.
  await runCheck();

  return {
    check: runCheck,
    signOff,
    async whileInstalling<T>(install: () => Promise<T>): Promise<T> {
      installing++;
      try {
        return await install();
      } finally {
        try {
          await signOff();
        } finally {
          installing--;
        }
      }
    },
    watchedDirectories: () => [...watchers.keys()].sort(),
    stop() {
      stopped = true;
      clearTimeout(debounce);
      clearTimeout(retry);
      clearInterval(interval);
      for (const w of watchers.values()) w.close();
      watchers.clear();
    },
  };
}
