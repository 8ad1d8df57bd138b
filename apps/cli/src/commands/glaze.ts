import { basename } from 'node:path';
import type { Command } from 'commander';
import { action, api, collect, jsonOption } from '../context.ts';
import { CliError, EXIT } from '../errors.ts';
import { bytes, print, progressBar, table } from '../output.ts';

export interface GlazeOut {
  id: string;
  name: string;
  size: number;
  sha256: string;
  mediaType: string;
  createdAt: string;
  spaces: string[];
}

const path = (ref: string) => `api/v1/glazes/${encodeURIComponent(ref)}`;
const wantProgress = (opt: boolean | undefined) => opt ?? process.stderr.isTTY;

function showGlaze(g: GlazeOut): string {
  return [
    `Glaze ${g.name}`,
    `  ID:         ${g.id}`,
    `  size:       ${bytes(g.size)} (${g.size} bytes)`,
    `  sha256:     ${g.sha256}`,
    `  media type: ${g.mediaType}`,
    `  created:    ${g.createdAt}`,
    `  spaces:     ${g.spaces.join(', ') || '-'}`,
  ].join('\n');
}

export function registerGlazeCommands(program: Command): Command {
  const glaze = program.command('glaze').description('the Glaze image repository');

  jsonOption(
    glaze
      .command('push <file>')
      .description('upload an image as a Glaze (streamed, with a progress bar); prints its SHA-256')
      .requiredOption('--name <name>', 'a name unique among your Glazes')
      .option('--space <space>', 'a Space allowed to use this Glaze (repeatable)', collect)
      .option('--media-type <type>', 'media type of the payload', 'application/octet-stream')
      .option('--progress', 'always show the progress bar')
      .option('--no-progress', 'never show the progress bar'),
  ).action(
    action(async (file: string, opts: { name: string; space?: string[]; mediaType: string; progress?: boolean; json?: boolean }) => {
      const q = new URLSearchParams({ name: opts.name, mediaType: opts.mediaType });
      if (opts.space?.length) q.set('spaces', opts.space.join(','));
      const client = api();
      const { body: g, sha256 } = await client.upload<GlazeOut>(`api/v1/glazes?${q}`, file, progressBar(`upload ${basename(file)}`, wantProgress(opts.progress)));
      if (g.sha256 !== sha256) {
        await client.call('DELETE', path(g.id)).catch(() => {});
        throw new CliError('digest_mismatch', `the master stored SHA-256 ${g.sha256} but the file is ${sha256}; the Glaze was removed`, EXIT.failure);
      }
      print(g, !!opts.json, (v: GlazeOut) => `pushed Glaze ${v.name} (${v.id})\n  size:   ${bytes(v.size)}\n  sha256: ${v.sha256}`);
    }),
  );

  jsonOption(glaze.command('list').description('list your Glazes').option('--space <space>', 'only Glazes this Space may use')).action(
    action(async (opts: { space?: string; json?: boolean }) => {
      const r = await api().call<{ items: GlazeOut[] }>('GET', `api/v1/glazes${opts.space ? `?space=${encodeURIComponent(opts.space)}` : ''}`);
      print(r.items, !!opts.json, (v: GlazeOut[]) => table(['NAME', 'ID', 'SIZE', 'SHA256'], v.map((g) => [g.name, g.id, bytes(g.size), g.sha256.slice(0, 16)])));
    }),
  );

  jsonOption(glaze.command('show <glaze>').description('show a Glaze')).action(
    action(async (ref: string, opts: { json?: boolean }) => print(await api().call<GlazeOut>('GET', path(ref)), !!opts.json, showGlaze)),
  );

  jsonOption(
    glaze
      .command('update <glaze>')
      .description('rename a Glaze or replace the Spaces allowed to use it')
      .option('--name <name>', 'new name')
      .option('--space <space>', 'replace the allowed Spaces with these (repeatable)', collect)
      .option('--no-spaces', 'allow no Space'),
  ).action(
    action(async (ref: string, opts: { name?: string; space?: string[]; spaces?: boolean; json?: boolean }) => {
      const body: Record<string, unknown> = {};
      if (opts.name !== undefined) body.name = opts.name;
      if (opts.space) body.spaces = opts.space;
      if (opts.spaces === false) body.spaces = [];
      if (Object.keys(body).length === 0) throw new CliError('nothing_to_update', 'give --name, --space or --no-spaces', EXIT.usage);
      print(await api().call<GlazeOut>('PATCH', path(ref), body), !!opts.json, (v: GlazeOut) => `updated Glaze ${v.name}`);
    }),
  );

  glaze
    .command('delete <glaze>')
    .description('delete a Glaze (refused while a Space uses it)')
    .action(
      action(async (ref: string) => {
        await api().call('DELETE', path(ref));
        process.stdout.write(`deleted Glaze ${ref}\n`);
      }),
    );

  jsonOption(
    glaze
      .command('pull <glaze>')
      .description('download a Glaze payload (streamed, with a progress bar)')
      .requiredOption('-o, --output <file>', 'where to write it')
      .option('--progress', 'always show the progress bar')
      .option('--no-progress', 'never show the progress bar'),
  ).action(
    action(async (ref: string, opts: { output: string; progress?: boolean; json?: boolean }) => {
      const r = await api().download(`${path(ref)}/content`, opts.output, progressBar(`download ${ref}`, wantProgress(opts.progress)));
      print({ file: opts.output, ...r }, !!opts.json, () => `wrote ${bytes(r.bytes)} to ${opts.output}`);
    }),
  );
  return glaze;
}
