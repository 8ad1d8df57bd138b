/**
 * `systemd-service`: the payload is a unit file, installed as `<unit dir>/<glaze name>.service`
 * (default /etc/systemd/system), then `systemctl daemon-reload` and `restart`, then a health check:
 * the unit must be `active` after `settleMs` and stay so. A failed check restores the previous unit
 * file (or removes the new one), reloads, restarts the previous (or stops) and rejects.
 *
 * Journal `<state>/install/systemd-service.json` = { unit, backup } from before the unit file is
 * replaced until the check passes; recover() after a kill restores the previous unit (rolled back):
 * an unchecked unit is never left in place.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { readJsonIfExists, removeDurably, writeFileDurably, writeJsonDurably } from '../state/files.ts';
import { type InstallContext, InstallError, type InstallHandler, safeSegment } from './types.ts';

export interface SystemdOptions {
  unitDir?: string;
  systemctl?: string;
  /** How long the unit must be active before the update counts as healthy. */
  settleMs?: number;
}

const journalOf = (stateDir: string) => join(stateDir, 'install', 'systemd-service.json');

export function systemdServiceHandler(options: SystemdOptions = {}): InstallHandler {
  const unitDir = options.unitDir ?? '/etc/systemd/system';
  const systemctl = options.systemctl ?? 'systemctl';
  const settleMs = options.settleMs ?? 3000;
  const run = (...args: string[]) =>
    new Promise<{ code: number; out: string }>((resolve) => {
      execFile(systemctl, args, { timeout: 60_000 }, (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: `${stdout}${stderr}`.trim() }));
    });
  const active = async (unit: string) => (await run('is-active', unit)).out.split('\n')[0] === 'active';

  async function restore(stateDir: string, j: { unit: string; backup: string | null }, log: Logger): Promise<void> {
    const path = join(unitDir, j.unit);
    if (j.backup && existsSync(j.backup)) writeFileDurably(path, readFileSync(j.backup), 0o644);
    else rmSync(path, { force: true });
    await run('daemon-reload');
    if (j.backup) await run('restart', j.unit);
    else await run('stop', j.unit);
    removeDurably(journalOf(stateDir));
    log.warn({ event: 'unit_restored', unit: j.unit, previous: j.backup !== null }, 'previous unit restored');
  }

  return {
    name: 'systemd-service',
    async install(ctx: InstallContext) {
      const unit = `${safeSegment(ctx.glaze.name, 'glaze name')}.service`;
      const text = readFileSync(ctx.payloadPath, 'utf8');
      if (!/^\s*\[Service\]/m.test(text)) throw new InstallError('install_input_invalid', 'the payload is not a systemd service unit (no [Service] section)');
      const path = join(unitDir, unit);
      const backupDir = join(ctx.stateDir, 'services');
      mkdirSync(backupDir, { recursive: true });
      let backup: string | null = null;
      if (existsSync(path)) {
        backup = join(backupDir, `${unit}.previous`);
        writeFileDurably(backup, readFileSync(path), 0o644);
      }
      const j = { unit, backup, glazeId: ctx.glaze.id, version: ctx.glaze.version };
      writeJsonDurably(journalOf(ctx.stateDir), j);
      writeFileDurably(path, text, 0o644);
      await run('daemon-reload');
      const restart = await run('restart', unit);
      let healthy = restart.code === 0;
      if (healthy) {
        await new Promise((r) => setTimeout(r, settleMs));
        healthy = await active(unit);
      }
      if (!healthy) {
        ctx.log.warn({ event: 'health_check_failed', handler: 'systemd-service', unit, glaze: ctx.glaze.id, detail: restart.out.slice(0, 300) }, 'the new unit is not active; restoring the previous one');
        await restore(ctx.stateDir, j, ctx.log);
        throw new InstallError('health_check_failed', `${unit} did not stay active after the update; the previous unit was restored`);
      }
      removeDurably(journalOf(ctx.stateDir));
      ctx.log.info({ event: 'install_committed', handler: 'systemd-service', glaze: ctx.glaze.id, unit }, 'service installed and healthy');
      return { committed: true };
    },
    async recover(stateDir: string, log: Logger) {
      const j = readJsonIfExists<{ unit: string; backup: string | null }>(journalOf(stateDir));
      if (!j) return 'clean';
      await restore(stateDir, j, log);
      return 'rolled_back';
    },
  };
}
