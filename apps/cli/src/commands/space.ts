import type { Command } from 'commander';
import { action, api, collect, jsonOption } from '../context.ts';
import { CliError, EXIT } from '../errors.ts';
import { listOptions, pageOptions, print, printPages } from '../output.ts';
import { parseEngineOption } from './provisioning.ts';

interface SpaceOut {
  id: string;
  name: string;
  phase: number;
  glazeId: string | null;
  engine?: string;
  engineRules?: { match: string; engine: string }[];
  members?: Member[];
  membersNextCursor?: string | null;
}

interface Member {
  metalId: string;
  interfaces: string[];
  isDefault: boolean;
}

const path = (ref: string) => `api/v1/spaces/${encodeURIComponent(ref)}`;

/** `--engine-for arch=arm64:tinkerbell` → `{ match: 'arch=arm64', engine: 'tinkerbell' }`, checked before any request. */
export function parseEngineFor(text: string): { match: string; engine: string } {
  const at = text.lastIndexOf(':');
  const match = at > 0 ? text.slice(0, at) : '';
  if (!/^[^=\s]+=[^=\s]+$/.test(match)) throw new CliError('bad_engine_rule', `--engine-for is <label>=<value>:<engine> (e.g. arch=arm64:tinkerbell), got "${text.slice(0, 64)}"`, EXIT.usage);
  return { match, engine: parseEngineOption(text.slice(at + 1), false)! };
}

function showSpace(s: SpaceOut): string {
  return [
    `Space ${s.name}`,
    `  ID:      ${s.id}`,
    `  phase:   ${s.phase}`,
    `  glaze:   ${s.glazeId ?? '-'}`,
    `  engine:  ${s.engine ?? 'builtin'}`,
    ...(s.engineRules ?? []).map((r) => `           ${r.engine} for metals labelled ${r.match}`),
    '  members:',
    ...(s.members?.length ? s.members.map((m) => `    ${m.metalId}  via ${m.interfaces.join(',')}${m.isDefault ? '  (default)' : ''}`) : ['    (none)']),
  ].join('\n');
}

export function registerSpaceCommands(program: Command): Command {
  const space = program.command('space').description('Spaces: groups of metals provisioned together in phase 1, 2 or 3');

  jsonOption(space.command('create').description('create a Space').requiredOption('--name <name>', 'a name unique among your Spaces').requiredOption('--phase <n>', '1, 2 or 3')).action(
    action(async (opts: { name: string; phase: string; json?: boolean }) => {
      if (!/^[123]$/.test(opts.phase)) throw new CliError('bad_phase', `--phase must be 1, 2 or 3, got "${opts.phase}"`, EXIT.usage);
      const s = await api().call<SpaceOut>('POST', 'api/v1/spaces', { name: opts.name, phase: Number(opts.phase) });
      print(s, !!opts.json, (v: SpaceOut) => `created Phase ${v.phase} Space ${v.name} (${v.id})`);
    }),
  );

  pageOptions(jsonOption(space.command('list').description('list your Spaces, oldest first').option('--phase <n>', 'only this phase'))).action(
    action(async (opts: { phase?: string; json?: boolean; jsonl?: boolean; limit?: string }) => {
      const { mode, max } = listOptions(opts);
      const q = new URLSearchParams(opts.phase ? { phase: opts.phase } : {});
      await printPages(api().pages<SpaceOut>('api/v1/spaces', q, max), mode, ['NAME', 'ID', 'PHASE', 'GLAZE'], (s) => [s.name, s.id, String(s.phase), s.glazeId ?? '-']);
    }),
  );

  jsonOption(space.command('show <space>').description('show a Space and all its members (following their pages)')).action(
    action(async (ref: string, opts: { json?: boolean }) => {
      const s = await api().call<SpaceOut>('GET', path(ref));
      // The answer holds the first page of members; the rest come from /members after its cursor.
      if (s.membersNextCursor) {
        for await (const page of api().pages<Member>(`${path(s.id)}/members`, undefined, undefined, s.membersNextCursor)) s.members?.push(...page);
        s.membersNextCursor = null;
      }
      print(s, !!opts.json, showSpace);
    }),
  );

  pageOptions(jsonOption(space.command('members <space>').description("list a Space's members by metal ID, page after page"))).action(
    action(async (ref: string, opts: { json?: boolean; jsonl?: boolean; limit?: string }) => {
      const { mode, max } = listOptions(opts);
      await printPages(api().pages<Member>(`${path(ref)}/members`, undefined, max), mode, ['METAL', 'INTERFACES', 'DEFAULT'], (m) => [
        m.metalId,
        m.interfaces.join(','),
        m.isDefault ? 'yes' : '-',
      ]);
    }),
  );

  jsonOption(
    space
      .command('update <space>')
      .alias('set')
      .description('rename a Space or set the Glaze it delivers (on a Phase 3 Space its metals are notified over MQTT)')
      .option('--name <name>', 'new name')
      .option('--glaze <glaze>', 'the Glaze (name, name@version or ID) this Space delivers; it must allow the Space')
      .option('--no-glaze', 'deliver no Glaze')
      .option('--engine <engine>', 'builtin | tinkerbell: the Phase 1 engine of the metals whose default Space this is (a metal may override it: tips metal set --engine)')
      .option('--engine-for <label=value:engine>', 'another engine for the metals whose label matches, e.g. arch=arm64:tinkerbell; repeat for more (first match wins; replaces the Space’s rules; a metal’s own engine still wins)', collect)
      .option('--no-engine-rules', 'remove the Space’s --engine-for rules'),
  ).action(
    action(async (ref: string, opts: { name?: string; glaze?: string | false; engine?: string; engineFor?: string[]; engineRules?: boolean; json?: boolean }) => {
      const body: Record<string, unknown> = {};
      if (opts.name !== undefined) body.name = opts.name;
      if (opts.glaze === false) body.glaze = null;
      else if (typeof opts.glaze === 'string') body.glaze = opts.glaze;
      if (opts.engine !== undefined) body.engine = parseEngineOption(opts.engine, false);
      if (opts.engineFor && opts.engineRules === false) throw new CliError('bad_engine_rules', 'give --engine-for or --no-engine-rules, not both', EXIT.usage);
      if (opts.engineFor) body.engineRules = opts.engineFor.map(parseEngineFor);
      if (opts.engineRules === false) body.engineRules = [];
      if (Object.keys(body).length === 0) throw new CliError('nothing_to_update', 'give --name, --glaze, --no-glaze, --engine, --engine-for or --no-engine-rules', EXIT.usage);
      const rules = (v: SpaceOut) => (v.engineRules?.length ? `; ${v.engineRules.map((r) => `${r.match} → ${r.engine}`).join(', ')}` : body.engineRules ? '; no engine rules' : '');
      print(await api().call<SpaceOut>('PATCH', path(ref), body), !!opts.json, (v: SpaceOut) => `updated Space ${v.name}${opts.engine !== undefined || body.engineRules ? `: engine ${v.engine}${rules(v)}` : ''}`);
    }),
  );

  space
    .command('delete <space>')
    .description('delete a Space')
    .action(
      action(async (ref: string) => {
        await api().call('DELETE', path(ref));
        process.stdout.write(`deleted Space ${ref}\n`);
      }),
    );

  jsonOption(
    space
      .command('add <space> <metal>')
      .description(
        "add a metal to a Space over the given interface(s); --default makes it the metal's default (Phase 1) Space. A Phase 1 Space (every default Space is one) takes exactly one --iface, and that interface must be marked pxe on the metal (tips metal create/update --iface NAME=MAC,ethernet,pxe); otherwise the master refuses it (phase1_needs_one_pxe_interface)",
      )
      .requiredOption('--iface <name>', 'interface of the metal that links it to the Space (repeatable; exactly one, marked pxe, for a Phase 1 Space)', collect)
      .option('--default', "make this the metal's default Space (must be Phase 1, so over one interface marked pxe)"),
  ).action(
    action(async (spaceRef: string, metalRef: string, opts: { iface: string[]; default?: boolean; json?: boolean }) => {
      const m = await api().call<{ spaceId: string; metalId: string }>('POST', `${path(spaceRef)}/members`, { metal: metalRef, interfaces: opts.iface, default: !!opts.default });
      print(m, !!opts.json, () => `added ${metalRef} to Space ${spaceRef} via ${opts.iface.join(',')}${opts.default ? ' (default)' : ''}`);
    }),
  );

  space
    .command('remove <space> <metal>')
    .description('remove a metal from a Space')
    .action(
      action(async (spaceRef: string, metalRef: string) => {
        await api().call('DELETE', `${path(spaceRef)}/members/${encodeURIComponent(metalRef)}`);
        process.stdout.write(`removed ${metalRef} from Space ${spaceRef}\n`);
      }),
    );
  return space;
}
