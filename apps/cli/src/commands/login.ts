import type { Command } from 'commander';
import { Api } from '../api.ts';
import { configPath, saveConfig } from '../config.ts';
import { action, api, jsonOption } from '../context.ts';
import { listOptions, pageOptions, print, printPages } from '../output.ts';

interface Owner {
  id: string;
  name: string;
  isAdmin: boolean;
}

export function registerLoginCommands(program: Command): void {
  program
    .command('login')
    .description('check an API token against a master and save both (config file mode 0600)')
    .requiredOption('--url <url>', 'the master, e.g. http://127.0.0.1:8080')
    .requiredOption('--token <token>', 'an owner API token (tips_…)')
    .action(
      action(async (opts: { url: string; token: string }) => {
        const me = await new Api(opts).call<Owner>('GET', 'api/v1/me');
        saveConfig({ url: opts.url, token: opts.token });
        process.stdout.write(`Logged in to ${opts.url} as ${me.name}${me.isAdmin ? ' (admin)' : ''}; saved to ${configPath()}\n`);
      }),
    );

  jsonOption(program.command('whoami').description('show the owner the saved token belongs to')).action(
    action(async (opts: { json?: boolean }) => {
      const me = await api().call<Owner>('GET', 'api/v1/me');
      print(me, !!opts.json, (o: Owner) => `${o.name} (${o.id})${o.isAdmin ? ' admin' : ''}`);
    }),
  );

  const owner = program.command('owner').description('owners (admin only)');
  jsonOption(owner.command('create').description('create an owner and print its first API token (shown once)').requiredOption('--name <name>', 'owner name')).action(
    action(async (opts: { name: string; json?: boolean }) => {
      const r = await api().call<{ owner: Owner; token: string }>('POST', 'api/v1/owners', { name: opts.name });
      print(r, !!opts.json, (v: typeof r) => `created owner ${v.owner.name} (${v.owner.id})\nAPI token (shown once): ${v.token}`);
    }),
  );
  pageOptions(jsonOption(owner.command('list').description('list owners, oldest first'))).action(
    action(async (opts: { json?: boolean; jsonl?: boolean; limit?: string }) => {
      const { mode, max } = listOptions(opts);
      await printPages(api().pages<Owner>('api/v1/owners', undefined, max), mode, ['ID', 'NAME', 'ADMIN'], (o) => [o.id, o.name, o.isAdmin ? 'yes' : '']);
    }),
  );

  const token = program.command('token').description("your API tokens (secrets are shown once, at creation)");
  jsonOption(token.command('create').description('create an API token').requiredOption('--name <name>', 'what the token is for')).action(
    action(async (opts: { name: string; json?: boolean }) => {
      const r = await api().call<{ id: string; secret: string }>('POST', 'api/v1/tokens', { name: opts.name });
      print(r, !!opts.json, (v: typeof r) => `token ${v.id} (shown once): ${v.secret}`);
    }),
  );
  pageOptions(jsonOption(token.command('list').description('list your API tokens, oldest first'))).action(
    action(async (opts: { json?: boolean; jsonl?: boolean; limit?: string }) => {
      const { mode, max } = listOptions(opts);
      await printPages(api().pages<{ id: string; name: string; createdAt: string; lastUsedAt: string | null }>('api/v1/tokens', undefined, max), mode, ['ID', 'NAME', 'CREATED', 'LAST USED'], (t) => [
        t.id,
        t.name,
        t.createdAt,
        t.lastUsedAt ?? '-',
      ]);
    }),
  );
  token
    .command('revoke <id>')
    .description('revoke an API token')
    .action(
      action(async (id: string) => {
        await api().call('DELETE', `api/v1/tokens/${encodeURIComponent(id)}`);
        process.stdout.write(`revoked ${id}\n`);
      }),
    );
}
