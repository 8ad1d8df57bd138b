import type { EventOut, Lwm2mOut, MetalUpdatesOut, ReportOut } from '@tips/core';
import type { Command } from 'commander';
import { action, api, collect, jsonOption, parseLabels } from '../context.ts';
import { CliError, EXIT } from '../errors.ts';
import { listOptions, pageOptions, print, printPages } from '../output.ts';
import { registerMetalLifecycleCommands } from './lifecycle.ts';
import { lwm2mLines } from './lwm2m.ts';
import { type JobOut, phase1Line, registerMetalPhase1Commands } from './provisioning.ts';
import { registerMetalPskCommands } from './psk.ts';

export interface MetalOut {
  id: string;
  name: string;
  labels: Record<string, string>;
  interfaces: { name: string; mac: string; type: string; pxe: boolean }[];
  spaces?: { spaceId: string; spaceName: string; phase: number; interfaces: string[]; isDefault: boolean }[];
  engine?: string | null;
  phase1?: JobOut | null;
  /** S14: when it was retired (null while in service). */
  retiredAt?: string | null;
  createdAt: string;
  updates?: MetalUpdates;
  /** Z5: the LwM2M registration (null: never registered over LwM2M). */
  lwm2m?: Lwm2mOut | null;
}

type MetalUpdates = MetalUpdatesOut;

const reportLine = (r: ReportOut) =>
  `${r.at}  ${r.result.padEnd(11)} ${r.glazeId} seq ${r.sequence} in ${r.spaceId}${r.reason ? `  (${r.reason})` : ''}${r.rolledBackTo ? `  -> back to ${r.rolledBackTo.glazeId === null ? 'nothing TIPS installed' : `${r.rolledBackTo.glazeName ?? r.rolledBackTo.glazeId} ${r.rolledBackTo.version ?? ''}`.trimEnd()}` : ''}`;
function eventLine(e: EventOut): string {
  const changes = Array.isArray(e.detail.changes) ? (e.detail.changes as { kind: string; path: string; detail: string }[]) : [];
  const rolledBack = typeof e.detail.from === 'string' ? `: ${e.detail.from} -> ${typeof e.detail.to === 'string' ? e.detail.to : 'nothing TIPS installed'}` : '';
  const what = changes.length > 0 ? `: ${changes.map((c) => `${c.kind} ${c.path}${c.detail ? ` (${c.detail})` : ''}`).join('; ')}` : typeof e.detail.message === 'string' ? `: ${e.detail.message}` : rolledBack;
  return `${e.createdAt}  ${e.kind.padEnd(18)} ${e.code}${what}`;
}

/** `--iface NAME=MAC[,TYPE][,pxe]`, e.g. `eth0=dc:a6:32:01:02:03,ethernet,pxe`. */
export function parseIface(spec: string): { name: string; mac: string; type: string; pxe: boolean } {
  const m = /^([^=]+)=([^,]+)((?:,[a-z]+)*)$/.exec(spec);
  if (!m) throw new CliError('bad_iface', `--iface "${spec}" must look like NAME=MAC[,ethernet|wifi|other][,pxe]`, EXIT.usage);
  const flags = (m[3] ?? '').split(',').filter(Boolean);
  const types = flags.filter((f) => f !== 'pxe');
  if (types.length > 1) throw new CliError('bad_iface', `--iface "${spec}" names more than one type`, EXIT.usage);
  return { name: m[1]!, mac: m[2]!, type: types[0] ?? 'ethernet', pxe: flags.includes('pxe') };
}

export function showMetal(m: MetalOut): string {
  const lines = [
    `Metal ${m.name}`,
    `  TIPS ID:    ${m.id}`,
    `  labels:     ${Object.entries(m.labels).map(([k, v]) => `${k}=${v}`).join(', ') || '-'}`,
    `  created:    ${m.createdAt}`,
    `  engine:     ${m.engine ?? 'inherited from its default Space'}`,
    '  interfaces:',
    ...m.interfaces.map((i) => `    ${i.name.padEnd(8)} ${i.mac}  ${i.type}${i.pxe ? '  pxe' : ''}`),
  ];
  if (m.spaces) {
    lines.push('  spaces:');
    if (m.spaces.length === 0) lines.push('    (none)');
    for (const s of m.spaces) lines.push(`    ${s.spaceName.padEnd(16)} phase ${s.phase}  via ${s.interfaces.join(',')}${s.isDefault ? '  (default)' : ''}`);
  }
  if (m.phase1 !== undefined) lines.push(`  phase 1:    ${phase1Line(m.phase1)}`);
  if (m.retiredAt) lines.push(`  retired:    ${m.retiredAt} (certificates revoked; it never enrolls again)`);
  lines.push(...lwm2mLines(m.lwm2m));
  const u = m.updates;
  if (u) {
    if (u.profile) lines.push(`  profile:    vendor ${u.profile.vendorId ?? '-'}  class ${u.profile.classId ?? '-'}  protocols ${u.profile.protocols.join(',') || '-'}  (${u.profile.updatedAt})`);
    lines.push('  installed Glazes:');
    if (u.installed.length === 0) lines.push('    (none reported)');
    for (const i of u.installed) lines.push(`    ${(i.glazeName ?? i.glazeId).padEnd(16)} ${i.version ?? '-'}  seq ${i.sequence ?? '-'}  in ${i.spaceId}  since ${i.installedAt ?? '-'}`);
    lines.push(`  last report: ${u.lastReport ? reportLine(u.lastReport) : '-'}`);
    if (u.history.length > 1) lines.push('  history:', ...u.history.map((r) => `    ${reportLine(r)}`));
    if (u.events.length > 0) lines.push('  events:', ...u.events.map((e) => `    ${eventLine(e)}`));
  }
  return lines.join('\n');
}

const path = (ref: string) => `api/v1/metals/${encodeURIComponent(ref)}`;

export function registerMetalCommands(program: Command): Command {
  const metal = program.command('metal').description('Metal Objects: your declared devices and their interfaces');
  registerMetalLifecycleCommands(metal);

  jsonOption(
    metal
      .command('create')
      .description('declare a metal')
      .requiredOption('--name <name>', 'a name unique among your metals')
      .requiredOption('--iface <spec>', 'NAME=MAC[,ethernet|wifi|other][,pxe] (repeatable)', collect)
      .option('--label <k=v>', 'a label (repeatable)', collect),
  ).action(
    action(async (opts: { name: string; iface: string[]; label?: string[]; json?: boolean }) => {
      const m = await api().call<MetalOut>('POST', 'api/v1/metals', { name: opts.name, labels: parseLabels(opts.label) ?? {}, interfaces: opts.iface.map(parseIface) });
      print(m, !!opts.json, (v: MetalOut) => `created metal ${v.name} with TIPS ID ${v.id}`);
    }),
  );

  pageOptions(
    jsonOption(
      metal
        .command('list')
        .description('list your metals, oldest first')
        .option('--label <k=v>', 'only metals with this label')
        .option('--prefix <text>', 'only metals whose name starts with this text (case-sensitive)')
        .option('--state <state>', 'only metals with an interface in this state at any of your gateways: pending, active or blocked')
        .option('--vendor <uuid>', 'only metals whose profile has this vendor ID')
        .option('--class <uuid>', 'only metals whose profile has this class ID')
        .option('--glaze <glaze>', 'only metals with this Glaze installed (name, name@version or ID)'),
    ),
  ).action(
    action(async (opts: { label?: string; prefix?: string; state?: string; vendor?: string; class?: string; glaze?: string; json?: boolean; jsonl?: boolean; limit?: string }) => {
      const { mode, max } = listOptions(opts);
      const q = new URLSearchParams();
      for (const k of ['label', 'prefix', 'state', 'vendor', 'class', 'glaze'] as const) if (opts[k] !== undefined) q.set(k, opts[k]!);
      await printPages(api().pages<MetalOut>('api/v1/metals', q, max), mode, ['NAME', 'TIPS ID', 'INTERFACES'], (m) => [
        m.name,
        m.id,
        m.interfaces.map((i) => `${i.name}=${i.mac}`).join(' '),
      ]);
    }),
  );

  jsonOption(
    metal
      .command('rollback <metal>')
      .description('ask a metal to roll back an installed Glaze (every installed one without --glaze): recorded, and the metal is notified over MQTT')
      .option('--glaze <glaze>', 'only this Glaze (name, name@version or ID)'),
  ).action(
    action(async (ref: string, opts: { glaze?: string; json?: boolean }) => {
      const r = await api().call<{ eventId: string; spaces: { spaceId: string; glazeId: string }[]; notified: number }>('POST', `${path(ref)}/rollback`, opts.glaze ? { glaze: opts.glaze } : {});
      print(r, !!opts.json, (v: typeof r) =>
        [`rollback requested for ${ref} (${v.eventId})`, ...v.spaces.map((s) => `  ${s.glazeId} in ${s.spaceId}`), `  notified: ${v.notified ? 'yes (MQTT)' : 'no (MQTT off or not delivered; the metal sees it when it next pulls)'}`].join('\n'),
      );
    }),
  );

  pageOptions(
    jsonOption(
      metal
        .command('tamper-events <metal>')
        .description("a metal's tamper reports (T16) with what changed, newest first; --all adds refused authentications, rollback requests and rollbacks done")
        .option('--all', 'every event kind'),
    ),
  ).action(
    action(async (ref: string, opts: { all?: boolean; json?: boolean; jsonl?: boolean; limit?: string }) => {
      const { mode, max } = listOptions(opts);
      const r = await api().call<{ items: EventOut[] }>('GET', `${path(ref)}/events${opts.all ? '' : '?kind=tamper'}`);
      const items = r.items.slice(0, max ?? r.items.length);
      if (mode === 'json') return print(items, true, () => '');
      if (mode === 'jsonl') {
        for (const e of items) process.stdout.write(`${JSON.stringify(e)}\n`);
        return;
      }
      process.stdout.write(items.length === 0 ? 'no events\n' : `${items.map(eventLine).join('\n')}\n`);
    }),
  );

  jsonOption(metal.command('show <metal>').description('show a metal (by name or TIPS ID), its Spaces, installed Glazes, report history and events')).action(
    action(async (ref: string, opts: { json?: boolean }) => {
      print(await api().call<MetalOut>('GET', path(ref)), !!opts.json, showMetal);
    }),
  );

  jsonOption(
    metal
      .command('update <metal>')
      .description('rename, relabel, or replace the interface list')
      .option('--name <name>', 'new name')
      .option('--label <k=v>', 'replace all labels with these (repeatable)', collect)
      .option('--iface <spec>', 'replace all interfaces with these (repeatable)', collect)
      .option(
        '--drop-memberships',
        'with --iface: drop the Space memberships the new list breaks; without it, a list that removes an interface a Space uses, or takes pxe from a Phase 1 Space\'s interface, is refused (interfaces_in_use) naming the Spaces',
      ),
  ).action(
    action(async (ref: string, opts: { name?: string; label?: string[]; iface?: string[]; dropMemberships?: boolean; json?: boolean }) => {
      if (opts.dropMemberships && !opts.iface) throw new CliError('bad_option', '--drop-memberships goes with --iface', EXIT.usage);
      const body = { name: opts.name, labels: parseLabels(opts.label), interfaces: opts.iface?.map(parseIface) };
      if (Object.values(body).every((v) => v === undefined)) throw new CliError('nothing_to_update', 'give --name, --label or --iface', EXIT.usage);
      if (opts.dropMemberships) Object.assign(body, { dropMemberships: true });
      const m = await api().call<MetalOut>('PATCH', path(ref), body);
      print(m, !!opts.json, (v: MetalOut) => `updated metal ${v.name}`);
    }),
  );

  metal
    .command('delete <metal>')
    .description('delete a metal and its Space memberships')
    .action(
      action(async (ref: string) => {
        await api().call('DELETE', path(ref));
        process.stdout.write(`deleted metal ${ref}\n`);
      }),
    );
  registerMetalPhase1Commands(metal);
  registerMetalPskCommands(metal);
  return metal;
}
