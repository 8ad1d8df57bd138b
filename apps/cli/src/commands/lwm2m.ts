import type { Lwm2mOut } from '@tips/core';
import type { Command } from 'commander';
import { action, api, jsonOption } from '../context.ts';
import { listOptions, pageOptions, print, printPages } from '../output.ts';


const firmwareLine = (f: NonNullable<Lwm2mOut['firmware']>) => `${f.status}  state ${f.state ?? '-'}  result ${f.result ?? '-'}  Glaze ${f.glazeId}  (${f.updatedAt})`;

/** The `lwm2m` lines of `tips metal show` and `tips lwm2m show`. */
export function lwm2mLines(l: Lwm2mOut | null | undefined, indent = '  '): string[] {
  if (l === undefined) return [];
  if (l === null) return [`${indent}lwm2m:      (never registered)`];
  return [
    `${indent}lwm2m:      ${l.online ? 'online' : 'OFFLINE'}  registration ${l.registrationId}  LwM2M ${l.lwm2mVersion}  binding ${l.binding}`,
    `${indent}  lifetime:  ${l.lifetime} s  last update ${l.lastUpdate}  registered ${l.registeredAt}`,
    `${indent}  objects:   ${l.objects.map((o) => `${o.objectId}${o.instances.length ? `/${o.instances.join(',')}` : ''}${o.version ? ` (v${o.version})` : ''}`).join('  ') || '-'}`,
    `${indent}  firmware:  ${l.firmware ? firmwareLine(l.firmware) : '-'}`,
  ];
}

interface QueuedOut {
  id: string;
  kind: string;
  target: string;
  status: string;
  records?: { path: string; value: unknown }[];
  jobId?: string;
  error?: { code: string; message: string };
  createdAt: string;
  updatedAt: string;
}
const queuedLine = (q: QueuedOut) =>
  `${q.id}  ${q.kind} ${q.target}  ${q.status}${q.jobId ? `  job ${q.jobId}` : ''}${q.error ? `  ${q.error.code}: ${q.error.message}` : ''}${q.records ? `  ${q.records.map((r) => `${r.path}=${valueText(r.value)}`).join(' ')}` : ''}`;
const queuedText = (q: QueuedOut, ref: string) => `queued ${q.id}: the device is in queue mode (asleep); it is sent at its next registration update — see \`tips lwm2m queue ${ref}\``;

const path = (ref: string) => `api/v1/metals/${encodeURIComponent(ref)}/lwm2m`;
const valueText = (v: unknown) => (typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v));

/** `tips lwm2m show|read|update`: LwM2M devices (Z5) — registration, live reads, firmware through object 5. */
export function registerLwm2mCommands(program: Command): Command {
  const lwm2m = program.command('lwm2m').description('LwM2M devices (constrained metals over CoAP/DTLS): registration, reads, firmware update through object 5');
  jsonOption(pageOptions(lwm2m.command('list').description('your LwM2M devices (every metal that registered over LwM2M), in TIPS ID order: online/offline/queued, lifetime, binding, last update, firmware'))).action(
    action(async (opts: { json?: boolean; jsonl?: boolean; limit?: string }) => {
      const { mode, max } = listOptions(opts);
      await printPages(api().pages<Lwm2mOut & { metalId: string; metalName: string }>('/api/v1/lwm2m/devices', undefined, max), mode, ['METAL', 'STATE', 'LIFETIME', 'BINDING', 'LAST UPDATE', 'FIRMWARE'], (d) => [
        d.metalName,
        !d.online ? 'offline' : d.queueMode ? 'queued' : 'online',
        `${d.lifetime}s`,
        d.binding,
        d.lastUpdate,
        d.firmware ? d.firmware.status : '-',
      ]);
    }),
  );
  jsonOption(lwm2m.command('show <metal>').description("show a metal's LwM2M registration (lifetime, binding, objects, last update, online) and its newest firmware job")).action(
    action(async (ref: string, opts: { json?: boolean }) => {
      print(await api().call<Lwm2mOut>('GET', path(ref)), !!opts.json, (l: Lwm2mOut) => [`Metal ${ref}`, ...lwm2mLines(l)].join('\n'));
    }),
  );
  jsonOption(
    lwm2m
      .command('read <metal> <path>')
      .description('read /obj, /obj/inst or /obj/inst/res live from the device (e.g. /3/0 the Device object, /5/0/3 the firmware state); the values are kept as observed values'),
  ).action(
    action(async (ref: string, p: string, opts: { json?: boolean }) => {
      const r = await api().call<{ records: { path: string; value: unknown }[] } | { queued: QueuedOut }>('POST', `${path(ref)}/read`, { path: p });
      print(r, !!opts.json, (x: typeof r) =>
        'queued' in x ? queuedText(x.queued, ref) : x.records.map((rec) => `${rec.path.padEnd(12)} ${valueText(rec.value)}`).join('\n') || '(no values)',
      );
    }),
  );
  jsonOption(
    lwm2m
      .command('update <metal>')
      .description(
        "update the device's firmware through object 5 with a Glaze of one of its Spaces: its signed SUIT manifest is written to /5/0/0 (the device verifies it against its trust list), its CoAP URI to /5/0/1; the master executes Update when the device has it and records State/Result (see `tips lwm2m show`)",
      )
      .requiredOption('--glaze <ref>', 'the Glaze (ID or name); it must be signed and the Glaze of a Space the metal is in'),
  ).action(
    action(async (ref: string, opts: { glaze: string; json?: boolean }) => {
      const job = await api().call<NonNullable<Lwm2mOut['firmware']> | { queued: QueuedOut }>('POST', `${path(ref)}/firmware`, { glaze: opts.glaze });
      print(job, !!opts.json, (j: typeof job) => ('queued' in j ? queuedText(j.queued, ref) : `firmware job ${j.jobId} started: ${firmwareLine(j)}\npackage URI ${j.packageUri}`));
    }),
  );
  jsonOption(
    lwm2m
      .command('queue <metal> [op]')
      .description(
        "queue mode (binding UQ): the reads and firmware updates waiting for the device's next registration update, and the last finished ones with their answers (kept in the database: any master replica the device updates at sends them); with [op] (lwq_…) that one operation",
      ),
  ).action(
    action(async (ref: string, op: string | undefined, opts: { json?: boolean }) => {
      if (op !== undefined) {
        const one = await api().call<QueuedOut>('GET', `${path(ref)}/queue/${encodeURIComponent(op)}`);
        print(one, !!opts.json, (q: QueuedOut) => `${queuedLine(q)}
  queued ${q.createdAt}  updated ${q.updatedAt}`);
        return;
      }
      const r = await api().call<{ items: QueuedOut[] }>('GET', `${path(ref)}/queue`);
      print(r, !!opts.json, (x: typeof r) => x.items.map(queuedLine).join('\n') || '(nothing queued)');
    }),
  );
  return lwm2m;
}
