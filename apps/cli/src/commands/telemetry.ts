import type { Command } from 'commander';
import { action, api, jsonOption } from '../context.ts';
import { CliError, EXIT } from '../errors.ts';
import { listOptions, pageOptions, print, printPages } from '../output.ts';

interface AppTokenOut {
  id: string;
  metalId: string;
  name: string;
  scope: string[];
  createdAt: string;
  expiresAt: string;
  secret?: string;
}
interface SampleOut {
  id: string;
  at: string;
  receivedAt: string;
  values: Record<string, number | string | boolean>;
}

/** `30d`, `12h`, `90m`, `3600s` or plain seconds → seconds. */
export function parseTtl(v: string): number {
  const m = /^([1-9][0-9]{0,6})([smhd]?)$/.exec(v);
  if (!m) throw new CliError('bad_ttl', `--ttl "${v}": expected a duration such as 30d, 12h, 90m or 3600s`, EXIT.usage);
  return Number(m[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
}

const values = (v: SampleOut['values']) =>
  Object.entries(v)
    .map(([k, x]) => `${k}=${x}`)
    .join(' ');

/** `tips app-token create|list|revoke` and `tips metal telemetry|heartbeat` (issue 11, information exchange). */
export function registerTelemetryCommands(program: Command): void {
  const app = program.command('app-token').description("application tokens: one device's telemetry for one application (the secret is shown once, at creation)");
  jsonOption(
    app
      .command('create')
      .description('mint an application token that reads one metal (its telemetry, heartbeat and profile) and nothing else')
      .requiredOption('--metal <ref>', 'the one metal it reads')
      .option('--scope <scope>', 'what it may do (only telemetry:read exists)', 'telemetry:read')
      .option('--ttl <duration>', 'lifetime: 30d, 12h, 90m, 3600s (default 90d, at most 365d)')
      .option('--name <name>', 'what it is for (default app-<metal name>)'),
  ).action(
    action(async (opts: { metal: string; scope: string; ttl?: string; name?: string; json?: boolean }) => {
      const body = { metal: opts.metal, scope: opts.scope.split(','), ...(opts.ttl ? { ttlSeconds: parseTtl(opts.ttl) } : {}), ...(opts.name ? { name: opts.name } : {}) };
      const r = await api().call<AppTokenOut>('POST', 'api/v1/app-tokens', body);
      print(r, !!opts.json, (v: AppTokenOut) => `application token ${v.id} for metal ${v.metalId} (${v.scope.join(' ')}), until ${v.expiresAt}\nsecret (shown once): ${v.secret}`);
    }),
  );
  pageOptions(jsonOption(app.command('list').description('list your application tokens, oldest first (never the secrets)'))).action(
    action(async (opts: { json?: boolean; jsonl?: boolean; limit?: string }) => {
      const { mode, max } = listOptions(opts);
      await printPages(api().pages<AppTokenOut>('api/v1/app-tokens', undefined, max), mode, ['ID', 'NAME', 'METAL', 'SCOPE', 'EXPIRES'], (t) => [t.id, t.name, t.metalId, t.scope.join(' '), t.expiresAt]);
    }),
  );
  app
    .command('revoke <id>')
    .description('revoke an application token (its next request is refused)')
    .action(
      action(async (id: string) => {
        await api().call('DELETE', `api/v1/app-tokens/${encodeURIComponent(id)}`);
        process.stdout.write(`revoked ${id}\n`);
      }),
    );

  const metal = program.commands.find((c) => c.name() === 'metal') ?? program.command('metal');
  pageOptions(
    jsonOption(
      metal
        .command('telemetry <metal>')
        .description('the telemetry a metal posted (tips-client telemetry send), oldest first')
        .option('--since <iso>', 'only samples the master received after this date-time'),
    ),
  ).action(
    action(async (ref: string, opts: { since?: string; json?: boolean; jsonl?: boolean; limit?: string }) => {
      const { mode, max } = listOptions(opts);
      const q = new URLSearchParams(opts.since ? { since: opts.since } : {});
      await printPages(api().pages<SampleOut>(`api/v1/metals/${encodeURIComponent(ref)}/telemetry`, q, max), mode, ['RECEIVED', 'AT', 'VALUES'], (s) => [s.receivedAt, s.at, values(s.values)]);
    }),
  );
  jsonOption(metal.command('heartbeat <metal>').description("a metal's last heartbeat (tips-client posts one each poll) and its registered profile")).action(
    action(async (ref: string, opts: { json?: boolean }) => {
      const r = await api().call<{ metal: { id: string; name: string }; heartbeat: { at: string; receivedAt: string; values: SampleOut['values'] } | null; profile: unknown }>('GET', `api/v1/metals/${encodeURIComponent(ref)}/heartbeat`);
      print(r, !!opts.json, (v: typeof r) => `${v.metal.name} (${v.metal.id}): ${v.heartbeat ? `last heartbeat ${v.heartbeat.receivedAt} ${values(v.heartbeat.values)}` : 'no heartbeat yet'}`);
    }),
  );
}
