import { useState } from 'react';
import { api, ApiError, get, type Page, type Space } from '../api.ts';
import { CheckField, Field, Form, SelectField } from '../forms.tsx';
import { useLive } from '../live.ts';
import { Link } from '../router.tsx';
import { At, Empty, ErrorBox, Pager, useLoad, usePages } from '../ui.tsx';

// Zero-touch onboarding (issue 11, Z1–Z4): the owner's onboarding keys, the vouchers imported, each
// device's onboarding record, and the bootstrapping profiles that decide what a device becomes.

interface OnboardingKey {
  id: string;
  name: string;
  alg: string;
  publicKey: string;
  fingerprint: string;
  createdAt: string;
}
interface Voucher {
  guid: string;
  status: string;
  deviceInfo: string;
  entries: number;
  ownerChain: string[];
  onboardingKey: { id: string; name: string | null };
  importedAt: string;
  updatedAt: string;
}
interface OnboardingRecord {
  id: string;
  guid: string;
  status: string;
  reason: string | null;
  profile: { id: string; name: string | null } | null;
  verifier: string | null;
  metal: string | null;
  createdAt: string;
  updatedAt: string;
}
/** LwM2M part of a profile (CONTRACT K, added by the constrained-devices work): shown when present. */
interface ProfileLwm2m {
  serverUri?: string;
  lifetime: number;
  binding: string;
  defaultMinPeriod?: number;
  defaultMaxPeriod?: number;
}
interface Profile {
  id: string;
  name: string;
  priority: number;
  match: Record<string, string | number>;
  phase1Glaze: string | null;
  spaces: string[];
  protocols: string[];
  attestation: string;
  pcrs: number[];
  lwm2m?: ProfileLwm2m | null;
  createdAt: string;
}

const STATUS_CLASS: Record<string, string> = { enrolled: 'state-active', onboarded: 'state-active', registered: 'state-active', failed: 'state-blocked', waiting: 'state-pending', attested: 'state-pending' };
const Status = ({ status }: { status: string }) => <span className={`badge ${STATUS_CLASS[status] ?? 'state-unseen'}`}>{status.replaceAll('_', ' ')}</span>;

/** A voucher file as the API takes it: the armoured text as is, CBOR as base64. */
async function voucherText(f: File): Promise<string> {
  const bytes = new Uint8Array(await f.arrayBuffer());
  const head = new TextDecoder().decode(bytes.subarray(0, 32));
  if (head.trimStart().startsWith('-----BEGIN')) return new TextDecoder().decode(bytes);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

interface ImportResult {
  file: string;
  ok: boolean;
  text: string;
}

export function OnboardingView() {
  const keys = useLoad(() => get<Page<OnboardingKey>>('/api/v1/onboarding-keys?limit=100'), []);
  const vPages = usePages();
  const vouchers = useLoad(() => get<Page<Voucher>>(`/api/v1/vouchers?limit=50${vPages.cursor ? `&cursor=${encodeURIComponent(vPages.cursor)}` : ''}`), [vPages.cursor]);
  const [status, setStatus] = useState('');
  const oPages = usePages();
  const records = useLoad(
    () => get<Page<OnboardingRecord>>(`/api/v1/onboardings?limit=50${status ? `&status=${status}` : ''}${oPages.cursor ? `&cursor=${encodeURIComponent(oPages.cursor)}` : ''}`),
    [status, oPages.cursor],
  );
  useLive((e) => e.kind === 'write' && (e.resource === 'vouchers' || e.resource === 'onboardings' || e.resource === 'metals'), () => {
    vouchers.reload();
    records.reload();
  });
  const [results, setResults] = useState<ImportResult[]>([]);
  const [files, setFiles] = useState<File[]>([]);
  const [keyName, setKeyName] = useState('');
  const [shownKey, setShownKey] = useState<OnboardingKey>();

  const importFiles = async () => {
    const out: ImportResult[] = [];
    setResults([]);
    // One request per file: the API imports a request all or nothing, so each file gets its own answer.
    for (const f of files) {
      try {
        const r = await api<{ items: { result: string; voucher: Voucher }[] }>('POST', '/api/v1/vouchers', { vouchers: [await voucherText(f)] });
        const v = r.items[0]!;
        out.push({ file: f.name, ok: true, text: `${v.result === 'imported' ? 'imported' : 'already imported, unchanged'}: device ${v.voucher.guid}` });
      } catch (e) {
        const err = e instanceof ApiError ? e : new ApiError(0, 'client', String(e));
        // One voucher per request: the API's index (vouchers[0]) says nothing here, the entry it names does.
        out.push({ file: f.name, ok: false, text: `refused (${err.code}): ${err.message.replace(/^vouchers\[0\]: /, '')}` });
      }
      setResults([...out]);
    }
    vouchers.reload();
    records.reload();
  };

  const noVouchers = vouchers.data && vouchers.data.items.length === 0 && !vPages.cursor;
  return (
    <section aria-labelledby="onboarding-title">
      <h1 id="onboarding-title">Onboarding</h1>
      <p className="muted">Devices that onboard themselves at first power-on: their ownership vouchers, each onboarding's status, and the bootstrapping profiles that decide what a device becomes (Z1–Z4).</p>

      <h2 id="keys-title">Onboarding keys</h2>
      <ErrorBox error={keys.error} what="Onboarding keys could not be loaded" />
      {keys.data && keys.data.items.length === 0 ? (
        <p>
          You have no onboarding key yet. Vouchers must be signed over to one of yours: make one here or with <code>tips voucher owner-key create fleet --out owner.pub</code>, and give its public key to your distributor.
        </p>
      ) : null}
      {keys.data && keys.data.items.length > 0 ? (
        <ul className="plain" aria-labelledby="keys-title">
          {keys.data.items.map((k) => (
            <li key={k.id}>
              <strong>{k.name}</strong> <span className="mono small">{k.fingerprint.slice(0, 16)}…</span> ({k.alg}, <At iso={k.createdAt} />)
            </li>
          ))}
        </ul>
      ) : null}
      <Form
        label="Make an onboarding key"
        submit="Make key"
        what="The key was not made"
        action={async () => {
          setShownKey(await api<OnboardingKey>('POST', '/api/v1/onboarding-keys', { name: keyName.trim() }));
          setKeyName('');
          keys.reload();
        }}
      >
        <Field id="okey-name" label="Key name" required value={keyName} onChange={setKeyName} placeholder="fleet" />
      </Form>
      {shownKey ? (
        <div className="notice" role="status">
          <p>
            Onboarding key <strong>{shownKey.name}</strong> made. Give this public key to your distributor; they sign your devices over to it with <code>tips factory voucher extend --to owner.pub</code>:
          </p>
          <pre className="mono" data-testid="onboarding-key-pem">
            {shownKey.publicKey}
          </pre>
        </div>
      ) : null}

      <h2 id="vouchers-title">Ownership vouchers</h2>
      <form
        className="inline"
        aria-label="Import vouchers"
        onSubmit={(e) => {
          e.preventDefault();
          void importFiles();
        }}
      >
        <div>
          <label htmlFor="voucher-files">Voucher files</label>
          <input id="voucher-files" type="file" multiple required onChange={(e) => setFiles(Array.from(e.target.files ?? []))} />
        </div>
        <button type="submit" className="primary" disabled={files.length === 0}>
          Import
        </button>
      </form>
      {results.length > 0 ? (
        <ul className="plain" aria-label="Import results" aria-live="polite">
          {results.map((r) => (
            <li key={r.file} data-ok={r.ok} className={r.ok ? 'notice' : 'error'}>
              <strong>{r.file}</strong>: {r.text}
            </li>
          ))}
        </ul>
      ) : null}
      <ErrorBox error={vouchers.error} what="Vouchers could not be loaded" />
      {noVouchers ? (
        <Empty title="No vouchers yet">
          <ol>
            <li>
              Make an onboarding key (above, or <code>tips voucher owner-key create fleet --out owner.pub</code>).
            </li>
            <li>
              The manufacturer makes each device's credential and first voucher with <code>tips factory device create</code>; each owner in turn signs it over with <code>tips factory voucher extend --to owner.pub</code>.
            </li>
            <li>
              Import the vouchers here, or with <code>tips voucher import DIR</code>. A device then onboards by itself at first power-on.
            </li>
          </ol>
        </Empty>
      ) : null}
      {vouchers.data && vouchers.data.items.length > 0 ? (
        <div className="table-wrap">
          <table aria-label="Vouchers">
            <thead>
              <tr>
                <th scope="col">Device GUID</th>
                <th scope="col">Status</th>
                <th scope="col">Owner key</th>
                <th scope="col">Hops</th>
                <th scope="col">Device info</th>
                <th scope="col">Imported</th>
              </tr>
            </thead>
            <tbody>
              {vouchers.data.items.map((v) => (
                <tr key={v.guid} data-guid={v.guid}>
                  <th scope="row" className="mono small">
                    {v.guid}
                  </th>
                  <td>
                    <Status status={v.status} />
                  </td>
                  <td>{v.onboardingKey.name ?? v.onboardingKey.id}</td>
                  <td>{v.entries}</td>
                  <td className="small">{v.deviceInfo || '—'}</td>
                  <td>
                    <At iso={v.importedAt} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      <Pager label="Pages of vouchers" pages={vPages} nextCursor={vouchers.data?.nextCursor} />

      <h2 id="onboardings-title">Onboardings</h2>
      <SelectField
        id="onboarding-status"
        label="Onboarding status"
        value={status}
        onChange={(v) => {
          setStatus(v);
          oPages.reset();
        }}
        options={[['', 'Any'], ...(['waiting', 'attested', 'registered', 'enrolled', 'failed'].map((s) => [s, s]) as [string, string][])]}
      />
      <ErrorBox error={records.error} what="Onboardings could not be loaded" />
      {records.data && records.data.items.length === 0 ? (
        <p className="muted">{status ? `No ${status} onboarding.` : 'No device has tried to onboard yet. Once its voucher is imported, a device powers on, finds this master through rendezvous, and appears here.'}</p>
      ) : null}
      {records.data && records.data.items.length > 0 ? (
        <div className="table-wrap">
          <table aria-label="Onboardings">
            <thead>
              <tr>
                <th scope="col">Device GUID</th>
                <th scope="col">Status</th>
                <th scope="col">Why</th>
                <th scope="col">Profile</th>
                <th scope="col">Metal</th>
                <th scope="col">Updated</th>
              </tr>
            </thead>
            <tbody>
              {records.data.items.map((r) => (
                <tr key={r.id} data-guid={r.guid}>
                  <th scope="row" className="mono small">
                    {r.guid}
                  </th>
                  <td>
                    <Status status={r.status} />
                  </td>
                  <td className="small">{r.reason ?? '—'}</td>
                  <td>{r.profile ? (r.profile.name ?? r.profile.id) : '—'}</td>
                  <td>{r.metal ? <Link to={`/metals/${r.metal}`}>{r.metal}</Link> : '—'}</td>
                  <td>
                    <At iso={r.updatedAt} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      <Pager label="Pages of onboardings" pages={oPages} nextCursor={records.data?.nextCursor} />

      <Profiles />
    </section>
  );
}

function Profiles() {
  const profiles = useLoad(() => get<Page<Profile>>('/api/v1/bootstrap/profiles?limit=200'), []);
  const spaces = useLoad(() => get<Page<Space>>('/api/v1/spaces?limit=200'), []);
  useLive((e) => e.kind === 'write' && (e.resource === 'bootstrap' || e.resource === 'spaces'), () => {
    profiles.reload();
    spaces.reload();
  });
  const [editing, setEditing] = useState<string>();
  const spaceName = (id: string) => spaces.data?.items.find((s) => s.id === id)?.name ?? id;
  const edited = profiles.data?.items.find((p) => p.id === editing);
  return (
    <>
      <h2 id="profiles-title">Bootstrapping profiles</h2>
      <p className="muted">A device that onboards takes the first profile (lowest priority) whose conditions it meets: it becomes a member of the profile's Spaces (its Phase 1 Space becomes the default).</p>
      <ErrorBox error={profiles.error} what="Profiles could not be loaded" />
      {profiles.data && profiles.data.items.length === 0 ? (
        <Empty title="No bootstrapping profiles yet">
          <p>
            Without a profile a device cannot onboard (it is refused with <code>no_profile</code>). Make one below, or with <code>tips bootstrap profile create sensors --vendor acme --space lab-base</code>.
          </p>
        </Empty>
      ) : null}
      {profiles.data && profiles.data.items.length > 0 ? (
        <div className="table-wrap">
          <table aria-label="Bootstrapping profiles">
            <thead>
              <tr>
                <th scope="col">Profile</th>
                <th scope="col">Priority</th>
                <th scope="col">Matches</th>
                <th scope="col">Spaces</th>
                <th scope="col">Verifier</th>
                <th scope="col">Protocols</th>
                <th scope="col">LwM2M</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {profiles.data.items.map((p) => (
                <tr key={p.id} data-profile={p.name}>
                  <th scope="row">{p.name}</th>
                  <td>{p.priority}</td>
                  <td className="small">{Object.keys(p.match).length === 0 ? 'every device' : Object.entries(p.match).map(([k, v]) => `${k}=${v}`).join(', ')}</td>
                  <td>{p.spaces.length === 0 ? '—' : p.spaces.map(spaceName).join(', ')}</td>
                  <td>
                    {p.attestation}
                    {p.pcrs.length ? ` (PCR ${p.pcrs.join(',')})` : ''}
                  </td>
                  <td>{p.protocols.join(', ')}</td>
                  <td className="small">{p.lwm2m ? `lifetime ${p.lwm2m.lifetime} s, binding ${p.lwm2m.binding}${p.lwm2m.serverUri ? `, ${p.lwm2m.serverUri}` : ''}` : '—'}</td>
                  <td>
                    <button type="button" aria-expanded={editing === p.id} onClick={() => setEditing(editing === p.id ? undefined : p.id)}>
                      Edit {p.name}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      {edited ? (
        <section className="panel" aria-label={`Edit profile ${edited.name}`}>
          <h3>Edit {edited.name}</h3>
          <ProfileForm
            key={edited.id}
            idPrefix="edit"
            initial={edited}
            spaces={spaces.data?.items ?? []}
            submit="Save profile"
            what="The profile was not changed"
            send={async (body) => {
              await api('PATCH', `/api/v1/bootstrap/profiles/${encodeURIComponent(edited.id)}`, body);
              setEditing(undefined);
              profiles.reload();
            }}
          />
        </section>
      ) : null}
      <details className="panel">
        <summary>Make a bootstrapping profile</summary>
        <ProfileForm
          idPrefix="profile"
          spaces={spaces.data?.items ?? []}
          submit="Make profile"
          what="The profile was not made"
          send={async (body) => {
            await api('POST', '/api/v1/bootstrap/profiles', body);
            profiles.reload();
          }}
        />
      </details>
    </>
  );
}

/** The fields of a profile the console sets; `initial` fills them to edit one. */
function ProfileForm({ idPrefix, initial, spaces, submit, what, send }: { idPrefix: string; initial?: Profile; spaces: Space[]; submit: string; what: string; send: (body: Record<string, unknown>) => Promise<void> }) {
  const [name, setName] = useState(initial?.name ?? '');
  const [vendor, setVendor] = useState(String(initial?.match.vendor ?? ''));
  const [klass, setKlass] = useState(String(initial?.match.class ?? ''));
  const [priority, setPriority] = useState(String(initial?.priority ?? 100));
  const [attestation, setAttestation] = useState(initial?.attestation ?? 'software-key');
  const [pcrs, setPcrs] = useState(initial?.pcrs.join(',') ?? '');
  const [chosen, setChosen] = useState<string[]>(initial?.spaces ?? []);
  return (
    <Form
      label={submit}
      submit={submit}
      what={what}
      className="stack"
      action={async () => {
        // Only vendor and class are set here; other conditions (arch, RAM, purpose) stay as they are.
        const match: Record<string, string | number> = { ...(initial?.match ?? {}) };
        delete match.vendor;
        delete match.class;
        if (vendor.trim()) match.vendor = vendor.trim();
        if (klass.trim()) match.class = klass.trim();
        const pcrList = pcrs
          .split(',')
          .map((x) => x.trim())
          .filter(Boolean)
          .map(Number);
        await send({ name: name.trim(), priority: Number(priority), match, spaces: chosen, attestation, ...(attestation === 'tpm2' ? { pcrs: pcrList } : { pcrs: [], pcrDigest: null }) });
        if (!initial) {
          setName('');
          setVendor('');
          setKlass('');
          setChosen([]);
        }
      }}
    >
      <Field id={`${idPrefix}-name`} label="Profile name" required value={name} onChange={setName} placeholder="sensors" />
      <Field id={`${idPrefix}-priority`} label="Priority (lower is tried first)" type="number" value={priority} onChange={setPriority} />
      <Field id={`${idPrefix}-vendor`} label="Device vendor (from the voucher; empty: any)" value={vendor} onChange={setVendor} placeholder="acme" />
      <Field id={`${idPrefix}-class`} label="Device class (empty: any)" value={klass} onChange={setKlass} placeholder="sensor" />
      <SelectField
        id={`${idPrefix}-attestation`}
        label="Verifier"
        value={attestation}
        onChange={setAttestation}
        options={[
          ['software-key', 'software-key: possession of the voucher’s device key'],
          ['tpm2', 'tpm2: a TPM 2.0 quote over the PCRs below'],
        ]}
      />
      {attestation === 'tpm2' ? <Field id={`${idPrefix}-pcrs`} label="PCRs the quote must cover (comma-separated, 0–23)" value={pcrs} onChange={setPcrs} placeholder="0,7" /> : null}
      <fieldset>
        <legend>Spaces the device becomes a member of</legend>
        {spaces.length === 0 ? <p className="muted">No Spaces yet: create one on the Spaces page.</p> : null}
        {spaces.map((s) => (
          <CheckField
            key={s.id}
            id={`${idPrefix}-space-${s.id}`}
            label={`${s.name} (Phase ${s.phase})`}
            checked={chosen.includes(s.id)}
            onChange={(c) => setChosen(c ? [...chosen, s.id] : chosen.filter((x) => x !== s.id))}
          />
        ))}
      </fieldset>
    </Form>
  );
}
