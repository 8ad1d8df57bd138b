import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { action, api, collect, jsonOption } from '../context.ts';
import { loadConfig } from '../config.ts';
import { CliError, EXIT } from '../errors.ts';
import { bytes, listOptions, pageOptions, print, printPages, progressBar } from '../output.ts';
import { suit } from '../suit-lib.ts';
import type { Api } from '../api.ts';
import { readSigningKey, sendBytes } from './identity.ts';

export interface GlazeOut {
  id: string;
  name: string;
  size: number;
  sha256: string;
  mediaType: string;
  createdAt: string;
  spaces: string[];
  handler?: string;
  version?: string | null;
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
    ...(g.handler ? [`  handler:    ${g.handler}`] : []),
    ...(g.version ? [`  version:    ${g.version}  (reference: ${g.name}@${g.version})`] : []),
  ].join('\n');
}

/** The S11 operator→master hop: the token plus a signature by its holder key over a fresh challenge. */
async function uploadHopHeaders(client: Api, token: string | undefined, holderKeyFile: string | undefined): Promise<Record<string, string>> {
  if (!token && !holderKeyFile) return {};
  if (!token || !holderKeyFile) throw new CliError('bad_option', '--upload-token and --holder-key go together', EXIT.usage);
  let key: KeyObject;
  try {
    key = createPrivateKey(readFileSync(holderKeyFile));
  } catch (e) {
    throw new CliError('bad_key', `cannot read a private key from ${holderKeyFile}: ${(e as Error).message}`, EXIT.usage);
  }
  const { nonce } = await client.call<{ nonce: string }>('POST', 'api/v1/tokens/challenge');
  // Loaded here, not at start: @tips/trust brings an X.509 library that slows every `tips` run.
  const { signPop } = await import('@tips/trust');
  return { 'x-tips-token': token, 'x-tips-pop-nonce': nonce, 'x-tips-pop-signature': signPop(nonce, token, key) };
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
      .option('--handler <handler>', 'how metals install it in Phases 2-3: archive | rootfs-ab | systemd-service | script', 'archive')
      .option('--version <label>', 'a version label, e.g. 1.4: the Glaze can then be named <name>@<label>')
      .option('--sign-key <pem>', 'sign a SUIT manifest for the Glaze locally with this private key and attach it (the key is registered with `tips key`)')
      .option('--vendor-domain <domain>', 'with --sign-key: vendor domain (vendor ID = UUID5(DNS, domain))', 'tips.local')
      .option('--class <info>', 'with --sign-key: class info (class ID = UUID5(vendor ID, info)); default: the Glaze name')
      .option('--component <name>', 'with --sign-key: component (storage location); default: the Glaze name')
      .option('--seq <n>', 'with --sign-key: manifest sequence number; default: the current UTC time in seconds')
      .option('--uri <uri>', 'with --sign-key: where metals fetch the payload; default: the Glaze content URL')
      .option('--upload-token <token>', 'an S11 upload token (tips token issue --audience urn:tips:master --scope upload:space:<space>) for masters that require one')
      .option('--holder-key <pem>', "with --upload-token: the private key the token is bound to; proves possession by signing the master's fresh challenge")
      .option('--progress', 'always show the progress bar')
      .option('--no-progress', 'never show the progress bar'),
  ).action(
    action(async (file: string, opts: { name: string; space?: string[]; mediaType: string; handler: string; version?: string; progress?: boolean; json?: boolean; uploadToken?: string; holderKey?: string; signKey?: string; vendorDomain: string; class?: string; component?: string; seq?: string; uri?: string }) => {
      // Read the key before uploading: a bad key must not leave an unsigned Glaze behind.
      const signKey = opts.signKey ? readSigningKey(opts.signKey) : undefined;
      if (opts.seq !== undefined && !/^\d{1,15}$/.test(opts.seq)) throw new CliError('bad_option', '--seq must be a non-negative integer', EXIT.usage);
      const q = new URLSearchParams({ name: opts.name, mediaType: opts.mediaType, handler: opts.handler });
      if (opts.version !== undefined) q.set('version', opts.version);
      if (opts.space?.length) q.set('spaces', opts.space.join(','));
      const client = api();
      const hop = await uploadHopHeaders(client, opts.uploadToken, opts.holderKey);
      const { body: g, sha256 } = await client.upload<GlazeOut>(`api/v1/glazes?${q}`, file, await progressBar(`upload ${basename(file)}`, wantProgress(opts.progress)), hop);
      if (g.sha256 !== sha256) {
        await client.call('DELETE', path(g.id)).catch(() => {});
        throw new CliError('digest_mismatch', `the master stored SHA-256 ${g.sha256} but the file is ${sha256}; the Glaze was removed`, EXIT.failure);
      }
      let manifest: { sequenceNumber: string; signedBy: { id: string; name: string } } | undefined;
      if (signKey) {
        const envelope = suit().bindGlaze({
          payloadSha256: sha256,
          payloadSize: g.size,
          uri: opts.uri ?? new URL(`${path(g.id)}/content`, `${loadConfig().url.replace(/\/$/, '')}/`).toString(),
          vendorDomain: opts.vendorDomain,
          classInfo: opts.class ?? g.name,
          component: opts.component ?? g.name,
          sequenceNumber: opts.seq !== undefined ? Number(opts.seq) : Math.floor(Date.now() / 1000),
          key: signKey,
        });
        try {
          manifest = await sendBytes('PUT', `${path(g.id)}/manifest`, envelope, 'application/suit-envelope+cose');
        } catch (err) {
          // A Glaze pushed with --sign-key is signed or not there at all.
          await client.call('DELETE', path(g.id)).catch(() => {});
          throw err;
        }
      }
      print({ ...g, ...(manifest ? { manifest } : {}) }, !!opts.json, (v: GlazeOut) =>
        [`pushed Glaze ${v.name} (${v.id})`, `  size:   ${bytes(v.size)}`, `  sha256: ${v.sha256}`, ...(manifest ? [`  manifest: sequence ${manifest.sequenceNumber}, signed by ${manifest.signedBy.name} (${manifest.signedBy.id})`] : [])].join('\n'),
      );
    }),
  );

  pageOptions(jsonOption(glaze.command('list').description('list your Glazes, oldest first').option('--space <space>', 'only Glazes this Space may use'))).action(
    action(async (opts: { space?: string; json?: boolean; jsonl?: boolean; limit?: string }) => {
      const { mode, max } = listOptions(opts);
      const q = new URLSearchParams(opts.space ? { space: opts.space } : {});
      await printPages(api().pages<GlazeOut>('api/v1/glazes', q, max), mode, ['NAME', 'ID', 'SIZE', 'SHA256'], (g) => [g.name, g.id, bytes(g.size), g.sha256.slice(0, 16)]);
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
      const r = await api().download(`${path(ref)}/content`, opts.output, await progressBar(`download ${ref}`, wantProgress(opts.progress)));
      print({ file: opts.output, ...r }, !!opts.json, () => `wrote ${bytes(r.bytes)} to ${opts.output}`);
    }),
  );
  return glaze;
}
