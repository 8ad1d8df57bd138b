import type { Command } from 'commander';
import { action, api, jsonOption } from '../context.ts';
import { CliError, EXIT } from '../errors.ts';
import { listOptions, pageOptions, print, printPages } from '../output.ts';

interface ProfileOut {
  id: string;
  name: string;
  priority: number;
  match: Record<string, string | number>;
  phase1Glaze: string | null;
  spaces: string[];
  protocols: string[];
  agent: Record<string, unknown>;
  attestation: string;
  pcrs: number[];
  pcrDigest: string | null;
  lwm2m?: Lwm2mOut;
  createdAt: string;
}

interface Lwm2mOut {
  serverUri?: string;
  lifetime: number;
  binding: string;
  defaultMinPeriod?: number;
  defaultMaxPeriod?: number;
}

interface Lwm2mFlags {
  lwm2mServer?: string;
  lwm2mLifetime?: string;
  lwm2mBinding?: string;
  lwm2mMinPeriod?: string;
  lwm2mMaxPeriod?: string;
}

/** The LwM2M flags of create/update (contract K); --lwm2m-lifetime is what turns the part on. */
function addLwm2mOptions(c: Command): Command {
  return c
    .option('--lwm2m-lifetime <seconds>', 'LwM2M: registration lifetime written to the Server object (/1/0/1); gives the profile an LwM2M part')
    .option('--lwm2m-binding <b>', 'LwM2M: U, or UQ for queue mode (the device sleeps between updates)', 'U')
    .option('--lwm2m-server <uri>', "LwM2M: coaps://host:port of the LwM2M server (default: this master's CoAP endpoint)")
    .option('--lwm2m-min-period <seconds>', 'LwM2M: default minimum observation period (/1/0/2)')
    .option('--lwm2m-max-period <seconds>', 'LwM2M: default maximum observation period (/1/0/3)');
}

function lwm2mBody(o: Lwm2mFlags): Lwm2mOut | undefined {
  const lifetime = int(o.lwm2mLifetime, '--lwm2m-lifetime');
  if (lifetime === undefined) {
    if (o.lwm2mServer !== undefined || o.lwm2mMinPeriod !== undefined || o.lwm2mMaxPeriod !== undefined) throw new CliError('bad_option', 'the --lwm2m-* flags need --lwm2m-lifetime', EXIT.usage, '--lwm2m-lifetime');
    return undefined;
  }
  return Object.fromEntries(
    Object.entries({ serverUri: o.lwm2mServer, lifetime, binding: o.lwm2mBinding ?? 'U', defaultMinPeriod: int(o.lwm2mMinPeriod, '--lwm2m-min-period'), defaultMaxPeriod: int(o.lwm2mMaxPeriod, '--lwm2m-max-period') }).filter(
      ([, v]) => v !== undefined,
    ),
  ) as unknown as Lwm2mOut;
}

const lwm2mText = (l: Lwm2mOut | undefined) =>
  l ? `lifetime ${l.lifetime} s, binding ${l.binding}, server ${l.serverUri ?? "this master's CoAP endpoint"}${l.defaultMinPeriod !== undefined ? `, min period ${l.defaultMinPeriod} s` : ''}${l.defaultMaxPeriod !== undefined ? `, max period ${l.defaultMaxPeriod} s` : ''}` : "none (the master's defaults)";

interface OnboardingOut {
  id: string;
  guid: string;
  status: string;
  reason: string | null;
  profile: { id: string; name: string | null } | null;
  verifier: string | null;
  metal: string | null;
  enrollmentSecret: string | null;
  device: { interfaces: { name: string; mac: string }[]; arch?: string; ramMb?: number; storageMb?: number; purpose?: string } | null;
  events: { status: string; at: string; reason: string | null }[];
  createdAt: string;
  updatedAt: string;
}

function collect(v: string, list: string[]): string[] {
  return [...list, v];
}

function int(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^[0-9]{1,10}$/.test(v)) throw new CliError('bad_option', `${flag} must be a whole number, got "${v}"`, EXIT.usage, flag);
  return Number(v);
}

const matchText = (m: ProfileOut['match']) => (Object.keys(m).length === 0 ? 'any device' : Object.entries(m).map(([k, v]) => `${k}=${v}`).join(' '));
const STATUS_HELP = '\nStatus: waiting (the device said hello) → attested (its proof and evidence held) → registered (its Metal Object exists) → enrolled (EST done), or failed + the exact reason.';

/** `tips bootstrap profile …` and `tips onboarding …` (issue 11, Z1 Z4). */
export function registerBootstrapCommands(program: Command): void {
  const bootstrap = program.command('bootstrap').description('bootstrapping: what a device that onboards by itself becomes (its profile)');
  const profile = bootstrap
    .command('profile')
    .description('bootstrapping profiles: matched on vendor, class, resources and purpose; they name the Spaces, the Phase 1 Glaze, protocols, agent settings and the verifier')
    .addHelpText('after', '\nA device tries the profiles by priority (lower first), then age; the first whose every condition it meets applies. No profile matches: the onboarding fails (no_profile) and nothing is created.');

  jsonOption(
    addLwm2mOptions(profile
      .command('create <name>')
      .description('make a profile')
      .option('--vendor <vendor>', "match the voucher's device-info vendor=")
      .option('--class <class>', "match the voucher's device-info class=")
      .option('--arch <arch>', 'match the architecture the device reports (x86_64, aarch64, …)')
      .option('--min-ram <MB>', 'match devices with at least this much memory')
      .option('--min-storage <MB>', 'match devices with at least this much storage')
      .option('--purpose <label>', "match device-info purpose=, else the device's --purpose")
      .option('--space <space>', 'a Space the metal joins (repeatable); the Phase 1 one becomes its default Space', collect, [] as string[])
      .option('--phase1-glaze <glaze>', "the Phase 1 Glaze (it must be the Phase 1 Space's); omit: the device already has its OS")
      .option('--protocol <p>', 'http or coap (repeatable; default http)', collect, [] as string[])
      .option('--attestation <verifier>', 'software-key (possession of the voucher key) or tpm2 (plus a TPM quote)', 'software-key')
      .option('--pcr <index>', 'tpm2: a PCR the quote must cover (repeatable)', collect, [] as string[])
      .option('--pcr-digest <hex>', 'tpm2: the expected SHA-256 over the selected PCR values')
      .option('--priority <n>', 'lower is tried first', '100')
      .option('--vendor-id <uuid>', "agent: the SUIT vendor ID the metal accepts")
      .option('--class-id <uuid>', 'agent: the SUIT class ID the metal accepts')
      .option('--managed-path <path>', 'agent: a path TIPS manages (repeatable)', collect, [] as string[])
      .option('--poll-interval <seconds>', 'agent: seconds between pulls')),
  ).action(
    action(
      async (
        name: string,
        o: {
          vendor?: string;
          class?: string;
          arch?: string;
          minRam?: string;
          minStorage?: string;
          purpose?: string;
          space: string[];
          phase1Glaze?: string;
          protocol: string[];
          attestation: string;
          pcr: string[];
          pcrDigest?: string;
          priority: string;
          vendorId?: string;
          classId?: string;
          managedPath: string[];
          pollInterval?: string;
          json?: boolean;
        } & Lwm2mFlags,
      ) => {
        const match = Object.fromEntries(
          Object.entries({ vendor: o.vendor, class: o.class, arch: o.arch, minRamMb: int(o.minRam, '--min-ram'), minStorageMb: int(o.minStorage, '--min-storage'), purpose: o.purpose }).filter(([, v]) => v !== undefined),
        );
        const agent = Object.fromEntries(
          Object.entries({ vendorId: o.vendorId, classId: o.classId, managedPaths: o.managedPath.length ? o.managedPath : undefined, pollIntervalSeconds: int(o.pollInterval, '--poll-interval') }).filter(([, v]) => v !== undefined),
        );
        const body = {
          name,
          priority: int(o.priority, '--priority'),
          match,
          spaces: o.space,
          ...(o.phase1Glaze ? { phase1Glaze: o.phase1Glaze } : {}),
          ...(o.protocol.length ? { protocols: o.protocol } : {}),
          attestation: o.attestation,
          ...(o.pcr.length ? { pcrs: o.pcr.map((p) => int(p, '--pcr')) } : {}),
          ...(o.pcrDigest ? { pcrDigest: o.pcrDigest } : {}),
          agent,
          ...(lwm2mBody(o) ? { lwm2m: lwm2mBody(o) } : {}),
        };
        const p = await api().call<ProfileOut>('POST', '/api/v1/bootstrap/profiles', body);
        print(p, o.json === true, (x: ProfileOut) => `profile ${x.name} (${x.id}): ${matchText(x.match)} → ${x.spaces.length} Space(s), ${x.attestation}`);
      },
    ),
  );

  jsonOption(
    addLwm2mOptions(
    profile
      .command('update <ref>')
      .description('change a profile (ID or name): what the flags name changes, the rest stays; later onboardings get it, metals that already onboarded keep what they became')
      .option('--name <name>', 'rename it')
      .option('--priority <n>', 'lower is tried first')
      .option('--vendor <vendor>', "match the voucher's device-info vendor= (\"\" drops the condition)")
      .option('--class <class>', 'match device-info class= ("" drops the condition)')
      .option('--space <space>', 'the Spaces the metal joins (repeatable; replaces the list)', collect, [] as string[])
      .option('--no-spaces', 'the metal joins no Space')
      .option('--attestation <verifier>', 'software-key or tpm2')
      .option('--pcr <index>', 'tpm2: a PCR the quote must cover (repeatable; replaces the list)', collect, [] as string[])
      .option('--no-lwm2m', "remove the LwM2M part (its devices get the master's defaults)"),
    ),
  ).action(
    action(async (ref: string, o: { name?: string; priority?: string; vendor?: string; class?: string; space: string[]; spaces: boolean; attestation?: string; pcr: string[]; lwm2m: boolean; json?: boolean } & Lwm2mFlags) => {
      const path = `/api/v1/bootstrap/profiles/${encodeURIComponent(ref)}`;
      const body: Record<string, unknown> = {};
      if (o.name !== undefined) body.name = o.name;
      if (o.priority !== undefined) body.priority = int(o.priority, '--priority');
      if (o.vendor !== undefined || o.class !== undefined) {
        // The API replaces the whole match: the conditions not named here are kept.
        const match: Record<string, string | number> = { ...(await api().call<ProfileOut>('GET', path)).match };
        for (const [k, v] of [['vendor', o.vendor], ['class', o.class]] as const) {
          if (v === undefined) continue;
          if (v === '') delete match[k];
          else match[k] = v;
        }
        body.match = match;
      }
      if (o.space.length) body.spaces = o.space;
      else if (o.spaces === false) body.spaces = [];
      if (o.attestation !== undefined) body.attestation = o.attestation;
      if (o.pcr.length) body.pcrs = o.pcr.map((p) => int(p, '--pcr'));
      if (o.lwm2m === false) body.lwm2m = null;
      else if (lwm2mBody(o)) body.lwm2m = lwm2mBody(o);
      if (Object.keys(body).length === 0) throw new CliError('bad_option', 'name at least one thing to change (see --help)', EXIT.usage);
      const p = await api().call<ProfileOut>('PATCH', path, body);
      print(p, o.json === true, (x: ProfileOut) => `profile ${x.name} (${x.id}) changed: priority ${x.priority}, ${matchText(x.match)} → ${x.spaces.length} Space(s), ${x.attestation}, lwm2m ${lwm2mText(x.lwm2m)}`);
    }),
  );

  jsonOption(pageOptions(profile.command('list').description('your bootstrapping profiles'))).action(
    action(async (opts: { json?: boolean; jsonl?: boolean; limit?: string }) => {
      const { mode, max } = listOptions(opts);
      await printPages(api().pages<ProfileOut>('/api/v1/bootstrap/profiles', undefined, max), mode, ['NAME', 'PRIORITY', 'MATCH', 'SPACES', 'ATTESTATION', 'ID'], (p) => [
        p.name,
        String(p.priority),
        matchText(p.match),
        String(p.spaces.length),
        p.attestation + (p.pcrs.length ? ` pcrs ${p.pcrs.join(',')}` : ''),
        p.id,
      ]);
    }),
  );

  jsonOption(profile.command('show <ref>').description('one bootstrapping profile (ID or name)')).action(
    action(async (ref: string, opts: { json?: boolean }) => {
      const p = await api().call<ProfileOut>('GET', `/api/v1/bootstrap/profiles/${encodeURIComponent(ref)}`);
      print(p, opts.json === true, (x: ProfileOut) =>
        [
          `name:         ${x.name} (${x.id})`,
          `priority:     ${x.priority}`,
          `match:        ${matchText(x.match)}`,
          `spaces:       ${x.spaces.join(', ') || '(none)'}`,
          `phase1 glaze: ${x.phase1Glaze ?? 'none (the device has its OS)'}`,
          `protocols:    ${x.protocols.join(', ')}`,
          `attestation:  ${x.attestation}${x.pcrs.length ? ` (PCRs ${x.pcrs.join(', ')}${x.pcrDigest ? `, digest ${x.pcrDigest}` : ''})` : ''}`,
          `agent:        ${JSON.stringify(x.agent)}`,
          `lwm2m:        ${lwm2mText(x.lwm2m)}`,
        ].join('\n'),
      );
    }),
  );

  const onboarding = program.command('onboarding').description("your devices' zero-touch onboardings and their status").addHelpText('after', STATUS_HELP);
  jsonOption(pageOptions(onboarding.command('list').description('every onboarding, oldest first').option('--status <status>', 'only this status (waiting, attested, registered, enrolled, failed)'))).action(
    action(async (opts: { json?: boolean; jsonl?: boolean; limit?: string; status?: string }) => {
      const { mode, max } = listOptions(opts);
      await printPages(api().pages<OnboardingOut>('/api/v1/onboardings', opts.status ? new URLSearchParams({ status: opts.status }) : undefined, max), mode, ['GUID', 'STATUS', 'PROFILE', 'METAL', 'REASON'], (r) => [
        r.guid,
        r.status,
        r.profile?.name ?? '-',
        r.metal ?? '-',
        r.reason ?? '',
      ]);
    }),
  );
  jsonOption(onboarding.command('show <ref>').description("one device's onboarding (its ID or the device GUID) with every attempt")).action(
    action(async (ref: string, opts: { json?: boolean }) => {
      const r = await api().call<OnboardingOut>('GET', `/api/v1/onboardings/${encodeURIComponent(ref)}`);
      print(r, opts.json === true, (x: OnboardingOut) =>
        [
          `guid:      ${x.guid} (${x.id})`,
          `status:    ${x.status}${x.reason ? ` — ${x.reason}` : ''}`,
          `profile:   ${x.profile?.name ?? '-'} (${x.verifier ?? '-'})`,
          `metal:     ${x.metal ?? '-'}`,
          `device:    ${x.device ? `${x.device.interfaces.map((i) => `${i.name} ${i.mac}`).join(', ')}; ${x.device.arch ?? '?'}, ${x.device.ramMb ?? '?'} MB RAM` : '-'}`,
          'events:',
          ...x.events.map((e) => `  ${e.at}  ${e.status}${e.reason ? `  ${e.reason}` : ''}`),
        ].join('\n'),
      );
    }),
  );
}
