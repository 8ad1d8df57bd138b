import { type FormEvent, useState } from 'react';
import { api, get, type IfaceState, type Metal, type Page, q } from '../api.ts';
import { useLive } from '../live.ts';
import { Link, navigate } from '../router.tsx';
import { CheckField, Field, Form, SelectField } from '../forms.tsx';
import { Empty, ErrorBox, StateBadge, useLoad, when } from '../ui.tsx';

export const PAGE_SIZE = 50;

interface FleetExtras {
  states: Map<string, IfaceState[]>;
  defaults: Map<string, string>;
}

/** One page of metals (a keyset range scan); the rows show as soon as it is here. */
interface Filters {
  prefix?: string;
  state?: string;
  label?: string;
}
const loadMetals = (filters: Filters, cursor: string | undefined) =>
  get<Page<Metal>>(`/api/v1/metals${q({ limit: String(PAGE_SIZE), cursor, prefix: filters.prefix, state: filters.state, label: filters.label })}`);

/** Then their interface states and default Spaces, two requests side by side. */
async function loadExtras(page: Page<Metal>): Promise<FleetExtras> {
  const macs = page.items.flatMap((m) => m.interfaces.map((i) => i.mac));
  const [states, defaults] = await Promise.all([
    macs.length ? get<{ items: IfaceState[] }>(`/api/v1/interface-states${q({ macs: macs.join(',') })}`) : { items: [] },
    page.items.length ? get<{ items: { metalId: string; spaceName: string }[] }>(`/api/v1/default-spaces${q({ metals: page.items.map((m) => m.id).join(',') })}`) : { items: [] },
  ]);
  const byMac = new Map<string, IfaceState[]>();
  for (const s of states.items) byMac.set(s.mac, [...(byMac.get(s.mac) ?? []), s]);
  return { states: byMac, defaults: new Map(defaults.items.map((d) => [d.metalId, d.spaceName])) };
}

function DeclareMetal({ onDone }: { onDone: () => void }) {
  const [name, setName] = useState('');
  const [mac, setMac] = useState('');
  const [iface, setIface] = useState('eth0');
  const [type, setType] = useState('ethernet');
  const [pxe, setPxe] = useState(true);
  return (
    <Form
      label="Declare a metal"
      submit="Declare metal"
      what="The metal was not declared"
      action={async () => {
        await api('POST', '/api/v1/metals', { name: name.trim(), interfaces: [{ name: iface.trim(), mac: mac.trim(), type, pxe }] });
        setName('');
        setMac('');
        onDone();
      }}
    >
      <Field id="metal-name" label="Name" required value={name} onChange={setName} placeholder="rack1-pi-07" />
      <Field id="metal-iface" label="Interface" required value={iface} onChange={setIface} size={6} />
      <Field id="metal-mac" label="MAC address" required value={mac} onChange={setMac} placeholder="02:00:00:00:00:01" />
      <SelectField id="metal-type" label="Type" value={type} onChange={setType} options={[['ethernet', 'ethernet'], ['wifi', 'wifi'], ['other', 'other']]} />
      <CheckField id="metal-pxe" label="PXE boots" checked={pxe} onChange={setPxe} />
    </Form>
  );
}

export function FleetView() {
  const [filters, setFilters] = useState<Filters>({});
  const [draft, setDraft] = useState({ name: '', state: '', label: '' });
  // Keyset pagination goes forward only: the cursors of the pages before are kept to go back.
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const cursor = cursors[cursors.length - 1];
  const metals = useLoad(() => loadMetals(filters, cursor), [filters, cursor]);
  const extras = useLoad(async () => (metals.data ? loadExtras(metals.data) : undefined), [metals.data]);
  // LwM2M registrations and updates (resource lwm2m) change nothing the fleet list shows.
  useLive((e) => (e.kind !== 'write' && e.resource !== 'lwm2m') || ['metals', 'spaces', 'gateways'].includes(e.resource ?? ''), metals.reload);
  const loading = metals.loading || extras.loading;
  const reload = metals.reload;
  const error = metals.error ?? extras.error;
  const data = metals.data && { page: metals.data, states: extras.data?.states, defaults: extras.data?.defaults };

  const apply = (e: FormEvent) => {
    e.preventDefault();
    const ref = draft.name.trim();
    if (/^mtl_/.test(ref)) {
      navigate(`/metals/${encodeURIComponent(ref)}`);
      return;
    }
    setCursors([undefined]);
    setFilters({ prefix: ref || undefined, state: draft.state || undefined, label: draft.label.trim() || undefined });
  };
  const filtered = filters.prefix !== undefined || filters.state !== undefined || filters.label !== undefined;
  const items = data?.page.items ?? [];

  return (
    <section aria-labelledby="fleet-title">
      <h1 id="fleet-title">Fleet</h1>
      <form className="inline filters" onSubmit={apply} aria-label="Find metals">
        <Field id="f-name" label="Name starts with, or TIPS ID" value={draft.name} onChange={(name) => setDraft({ ...draft, name })} placeholder="rack1-, or mtl_…" />
        <SelectField
          id="f-state"
          label="Interface state"
          value={draft.state}
          onChange={(state) => setDraft({ ...draft, state })}
          options={[['', 'any'], ['pending', 'Pending'], ['active', 'Active'], ['blocked', 'Blocked']]}
        />
        <Field id="f-label" label="Label" value={draft.label} onChange={(label) => setDraft({ ...draft, label })} placeholder="site=berlin" />
        <button type="submit">Search</button>
        {filtered ? (
          <button
            type="button"
            onClick={() => {
              setDraft({ name: '', state: '', label: '' });
              setCursors([undefined]);
              setFilters({});
            }}
          >
            Clear
          </button>
        ) : null}
      </form>
      <details className="panel">
        <summary>Declare a metal</summary>
        <DeclareMetal onDone={reload} />
      </details>
      <ErrorBox error={error} what="The fleet could not be loaded" />
      {data && items.length === 0 && !filtered && cursors.length === 1 ? (
        <Empty title="No metals yet">
          <p>
            Declare your first metal: open <em>Declare a metal</em> above and give it a name and the MAC address of its network interface, or run{' '}
            <code>tips metal create --name rack1-pi-07 --iface eth0=02:00:00:00:00:01,ethernet,pxe</code>. Then put it in a Phase 1 Space as its default (Spaces) so a gateway lets it in.
          </p>
        </Empty>
      ) : null}
      {data && items.length === 0 && filtered ? <p>No metal matches these filters. Names match by their start (case matters); the state is an interface's at any gateway; labels as key=value.</p> : null}
      {items.length > 0 ? (
        <div className="table-wrap">
          <table aria-label="Metals" aria-busy={loading}>
            <thead>
              <tr>
                <th scope="col">Metal</th>
                <th scope="col">Interfaces and state</th>
                <th scope="col">Gateway</th>
                <th scope="col">Default Space</th>
                <th scope="col">Labels</th>
                <th scope="col">Last seen</th>
              </tr>
            </thead>
            <tbody>
              {items.map((m) => {
                const rows = m.interfaces.flatMap((i) => data?.states?.get(i.mac.toLowerCase()) ?? []);
                const seen = rows.map((r) => r.lastSeenAt).filter((x): x is string => x !== null).sort().pop();
                const gateways = [...new Set(rows.map((r) => r.gatewayName))];
                return (
                  <tr key={m.id} data-metal={m.name}>
                    <th scope="row">
                      <Link to={`/metals/${m.id}`}>{m.name}</Link>
                      <div className="muted mono small">{m.id}</div>
                    </th>
                    <td>
                      <ul className="plain">
                        {m.interfaces.map((i) => {
                          const st = data?.states?.get(i.mac.toLowerCase()) ?? [];
                          return (
                            <li key={i.mac} data-mac={i.mac}>
                              <span className="mono">{i.name}</span> <span className="mono small">{i.mac}</span>{' '}
                              {!data?.states ? (
                                <span className="muted">…</span>
                              ) : st.length === 0 ? (
                                <span className="badge state-unseen">Not seen</span>
                              ) : (
                                st.map((s) => <StateBadge key={s.gatewayId} state={s.state} />)
                              )}
                            </li>
                          );
                        })}
                      </ul>
                    </td>
                    <td>{gateways.join(', ') || '—'}</td>
                    <td>{data?.defaults ? (data.defaults.get(m.id) ?? <span className="muted">none</span>) : <span className="muted">…</span>}</td>
                    <td>
                      {Object.entries(m.labels).map(([k, v]) => (
                        <span key={k} className="label">
                          {k}={v}
                        </span>
                      ))}
                    </td>
                    <td>{when(seen)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      ) : null}
      <nav className="pager" aria-label="Pages of metals">
        <button type="button" disabled={cursors.length === 1} onClick={() => setCursors(cursors.slice(0, -1))}>
          Previous page
        </button>
        <span aria-live="polite">Page {cursors.length}</span>
        <button type="button" disabled={!data?.page.nextCursor} onClick={() => data?.page.nextCursor && setCursors([...cursors, data.page.nextCursor])}>
          Next page
        </button>
      </nav>
    </section>
  );
}
