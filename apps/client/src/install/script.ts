/**
 * `script`: the payload is an installer program (a shell script or any executable), signed through
 * its SUIT manifest's digest like every payload. It is copied to `<state>/scripts/<name>/<version>/install`
 * (0700), run with TIPS_GLAZE_* in its environment and a fresh working directory, and counts as
 * committed when it exits 0; `<state>/scripts/<name>/current` then names the version.
 *
 * A script is its own transaction: the handler cannot undo what it did. Journal
 * `<state>/install/script.json` while it runs; a kill during the run → recover() reports
 * rolled_back and the agent runs it again on its next pull (installers must be re-runnable).
 */
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { readJsonIfExists, removeDurably, writeJsonDurably } from '../state/files.ts';
import { fsyncTree } from './fsync-tree.ts';
import { switchSymlink } from './switch.ts';
import { type InstallContext, InstallError, type InstallHandler, safeSegment } from './types.ts';

const journalOf = (stateDir: string) => join(stateDir, 'install', 'script.json');

export function scriptHandler(options: { timeoutMs?: number } = {}): InstallHandler {
  const timeoutMs = options.timeoutMs ?? 600_000;
  return {
    name: 'script',
    async install(ctx: InstallContext) {
      const name = safeSegment(ctx.glaze.name, 'glaze name');
      const version = safeSegment(ctx.glaze.version, 'glaze version');
      const base = join(ctx.stateDir, 'scripts', name);
      const dir = join(base, version);
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(join(dir, 'work'), { recursive: true });
      const program = join(dir, 'install');
      copyFileSync(ctx.payloadPath, program);
      chmodSync(program, 0o700);
      fsyncTree(dir);
      writeJsonDurably(journalOf(ctx.stateDir), { name, version, glazeId: ctx.glaze.id });
      const out = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
        const p = spawn(program, [], {
          cwd: join(dir, 'work'),
          env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', TIPS_GLAZE_ID: ctx.glaze.id, TIPS_GLAZE_NAME: name, TIPS_GLAZE_VERSION: version, TIPS_GLAZE_SHA256: ctx.glaze.sha256, TIPS_STATE_DIR: ctx.stateDir },
          stdio: ['ignore', 'pipe', 'pipe'],
          timeout: timeoutMs,
        });
        let output = '';
        const keep = (d: Buffer) => {
          output = (output + d.toString('utf8')).slice(-4000);
        };
        p.stdout.on('data', keep);
        p.stderr.on('data', keep);
        p.on('error', (e) => reject(new InstallError('script_failed', `the installer cannot start: ${e.message}`)));
        p.on('close', (code) => resolve({ code, output }));
      });
      removeDurably(journalOf(ctx.stateDir));
      if (out.code !== 0) {
        ctx.log.warn({ event: 'install_failed', handler: 'script', glaze: ctx.glaze.id, exitCode: out.code, output: out.output.slice(-1000) }, 'installer script failed');
        throw new InstallError('script_failed', `the installer exited ${out.code ?? 'on a signal (timeout?)'}: ${out.output.trim().split('\n').pop() ?? ''}`.slice(0, 300));
      }
      switchSymlink(join(base, 'current'), version);
      ctx.log.info({ event: 'install_committed', handler: 'script', glaze: ctx.glaze.id, name, version }, 'installer script ran');
      return { committed: true };
    },
    async recover(stateDir: string, log: Logger) {
      const j = readJsonIfExists<{ name: string; version: string }>(journalOf(stateDir));
      if (!j) return 'clean';
      removeDurably(journalOf(stateDir));
      log.warn({ event: 'install_recovered', handler: 'script', name: j.name, version: j.version, outcome: 'rolled_back' }, 'an installer script was interrupted; it runs again on the next pull');
      return 'rolled_back';
    },
  };
}
