import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { action, api, jsonOption } from '../context.ts';
import { CliError, EXIT } from '../errors.ts';
import { listOptions, pageOptions, print, printPages } from '../output.ts';

/** A Phase 1 job as the master shows it (GET /api/v1/provisioning/jobs[/:id]). */
export type { JobOut } from '@tips/core';
import type { JobOut } from '@tips/core';

const ENGINES = ['builtin', 'tinkerbell'];
const STATES = ['waiting_for_glaze', 'queued', 'booting', 'installing', 'installed', 'failed'];

/** One line for `tips metal show`: the metal's current Phase 1 job. */
export function phase1Line(j: JobOut | null | undefined): string {
  if (!j) return 'none (no Phase 1 job yet)';
  const why = j.reason ? ` (${j.reason})` : '';
  const glaze = j.glaze ? `  glaze ${j.glaze.name} #${j.glaze.sequence}` : '';
  return `${j.state}${why}  job ${j.id}  engine ${j.engine}${glaze}  since ${j.updatedAt}`;
}

function showJob(j: JobOut): string {
  const lines = [
    `Phase 1 job ${j.id}`,
    `  metal:      ${j.metalId} via ${j.interfaceName} (${j.mac})`,
    `  state:      ${j.state}${j.reason ? ` (${j.reason})` : ''}`,
    ...(j.detail ? [`  detail:     ${j.detail}`] : []),
    `  engine:     ${j.engine}`,
    `  glaze:      ${j.glaze ? `${j.glaze.name} (${j.glaze.id}) #${j.glaze.sequence}, ${j.glaze.size} bytes, sha256 ${j.glaze.sha256}` : '- (waiting for the default Space to get a Glaze)'}`,
    `  claimed:    ${j.claimed ? 'yes (an installer key is bound)' : 'no'}`,
    '  transitions:',
    ...j.transitions.map((t) => `    ${t.at}  ${t.state}${t.reason ? ` (${t.reason})` : ''}`),
  ];
  if (j.report) {
    const p = j.report.payload;
    lines.push(`  report:     ${p.result}${p.reason ? ` (${p.reason})` : ''}, ${p.bytesWritten} bytes to ${p.disk}, signed by the installer, received ${j.report.receivedAt}`);
    if (p.detail) lines.push(`              ${p.detail}`);
  }
  return lines.join('\n');
}

export function registerProvisioningCommands(program: Command): Command {
  const prov = program.command('provisioning').description('Phase 1 provisioning: the jobs that bring a metal from bare metal to its default Space’s Glaze');

  pageOptions(
    jsonOption(
      prov
        .command('jobs')
        .description('list Phase 1 jobs, newest first (history included)')
        .option('--metal <metal>', 'only this metal’s jobs (name or TIPS ID)')
        .option('--state <state>', `only jobs in this state: ${STATES.join(', ')}`),
    ),
  ).action(
    action(async (opts: { metal?: string; state?: string; json?: boolean; jsonl?: boolean; limit?: string }) => {
      const { mode, max } = listOptions(opts);
      if (opts.state !== undefined && !STATES.includes(opts.state)) throw new CliError('bad_state', `--state must be one of ${STATES.join(', ')}, got "${opts.state}"`, EXIT.usage);
      const q = new URLSearchParams({ ...(opts.metal ? { metal: opts.metal } : {}), ...(opts.state ? { state: opts.state } : {}) });
      await printPages(api().pages<JobOut>('api/v1/provisioning/jobs', q, max), mode, ['JOB', 'METAL', 'STATE', 'REASON', 'ENGINE', 'GLAZE', 'UPDATED'], (j) => [
        j.id,
        j.metalId,
        j.state,
        j.reason ?? '-',
        j.engine,
        j.glaze ? `${j.glaze.name}#${j.glaze.sequence}` : '-',
        j.updatedAt,
      ]);
    }),
  );

  jsonOption(prov.command('show <job>').description('show a Phase 1 job: its transitions and the installer’s signed report')).action(
    action(async (id: string, opts: { json?: boolean }) => print(await api().call<JobOut>('GET', `api/v1/provisioning/jobs/${encodeURIComponent(id)}`), !!opts.json, showJob)),
  );
  return prov;
}

/** Asks on the terminal; without one, only --yes may go ahead. */
async function confirm(question: string, yes: boolean): Promise<void> {
  if (yes) return;
  if (!process.stdin.isTTY) throw new CliError('confirmation_needed', 'not a terminal: pass --yes to reprovision without asking', EXIT.usage);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = (await rl.question(`${question} [y/N] `)).trim().toLowerCase();
    if (answer !== 'y' && answer !== 'yes') throw new CliError('aborted', 'nothing changed', EXIT.failure);
  } finally {
    rl.close();
  }
}

const metalPath = (ref: string) => `api/v1/metals/${encodeURIComponent(ref)}`;

/** `tips metal reprovision` and `tips metal set --engine` (`tips space set|update --engine` is in space.ts). */
export function registerMetalPhase1Commands(metal: Command): void {
  jsonOption(
    metal
      .command('reprovision <metal>')
      .description('re-run Phase 1 for a metal: its next PXE boot installs its default Space’s Glaze again (asks first; the disk is overwritten)')
      .option('--yes', 'do not ask (for scripts; required without a terminal)')
      .option('--force', 'replace a job that is still running (it ends failed, superseded)'),
  ).action(
    action(async (ref: string, opts: { yes?: boolean; force?: boolean; json?: boolean }) => {
      await confirm(`Reprovision metal ${ref}? Its disk will be overwritten with its default Space's Glaze on its next PXE boot.`, !!opts.yes);
      const j = await api().call<JobOut>('POST', `${metalPath(ref)}/reprovision`, opts.force ? { force: true } : {});
      print(j, !!opts.json, (v: JobOut) => `created Phase 1 job ${v.id} for ${ref}: ${v.state}${v.reason ? ` (${v.reason})` : ''}, engine ${v.engine}`);
    }),
  );

  jsonOption(
    metal
      .command('set <metal>')
      .description('set a metal’s Phase 1 settings')
      .requiredOption('--engine <engine>', `${ENGINES.join(' | ')} | inherit (use its default Space’s engine)`),
  ).action(
    action(async (ref: string, opts: { engine: string; json?: boolean }) => {
      const m = await api().call<{ name: string; engine: string | null }>('PATCH', metalPath(ref), { engine: parseEngineOption(opts.engine, true) });
      print(m, !!opts.json, (v: { name: string; engine: string | null }) => `metal ${v.name}: engine ${v.engine ?? 'inherited from its default Space'}`);
    }),
  );
}

/** An `--engine` value, checked before any request (`inherit` only where a metal may inherit). */
export function parseEngineOption(value: string, inherit: boolean): string | null {
  const allowed = inherit ? [...ENGINES, 'inherit'] : ENGINES;
  if (!allowed.includes(value)) throw new CliError('bad_engine', `--engine must be one of ${allowed.join(', ')}, got "${value}"`, EXIT.usage);
  return value === 'inherit' ? null : value;
}
