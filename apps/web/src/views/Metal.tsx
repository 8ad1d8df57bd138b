import { useState } from 'react';
import { api, get, type IfaceState, type JobOut, type Metal, type MetalUpdatesOut, type Page, q, type ReportOut, type Space } from '../api.ts';
import { useLive } from '../live.ts';
import { Link, navigate } from '../router.tsx';
import { ConfirmButton } from '../forms.tsx';
import { At, ErrorBox, StateBadge, useLoad, when } from '../ui.tsx';
import { JobsTable } from './Jobs.tsx';
import { Changes } from './Tamper.tsx';

interface Membership {
  spaceId: string;
  spaceName: string;
  phase: number;
  interfaces: string[];
  isDefault: boolean;
}
type MetalDetail = Metal & { spaces: Membership[]; phase1: JobOut | null; retiredAt: string | null; blocked?: boolean; updates?: MetalUpdatesOut };

async function loadMetal(ref: string) {
  const metal = await get<MetalDetail>(`/api/v1/metals/${encodeURIComponent(ref)}`);
  const macs = metal.interfaces.map((i) => i.mac).join(',');
  const [states, spaces, jobs] = await Promise.all([
    macs ? get<{ items: IfaceState[] }>(`/api/v1/interface-states${q({ macs })}`) : { items: [] },
    Promise.all(metal.spaces.map((s) => get<Space>(`/api/v1/spaces/${s.spaceId}`))),
    get<Page<JobOut>>(`/api/v1/provisioning/jobs${q({ metal: metal.id, limit: '20' })}`),
  ]);
  const glazeIds = [...new Set(spaces.map((s) => s.glazeId).filter((g): g is string => g !== null))];
  const glazes = await Promise.all(glazeIds.map((g) => get<{ id: string; name: string; version: string | null }>(`/api/v1/glazes/${g}`)));
  return { metal, states: states.items, spaces, glazes, jobs: jobs.items };
}

export function MetalView({ metalRef }: { metalRef: string }) {
  const { data, error, reload } = useLoad(() => loadMetal(metalRef), [metalRef]);
  const [reason, setReason] = useState('');
  const [notice, setNotice] = useState<string>();
  useLive((e) => e.kind === 'table' || e.kind === 'write' || e.kind === 'provisioning' || (e.kind === 'metal' && e.resource !== 'lwm2m'), reload);
  if (error) return <ErrorBox error={error} what={`Metal ${metalRef} could not be loaded`} />;
  if (!data) return <p aria-busy="true">Loading…</p>;
  const { metal, states, spaces, glazes, jobs } = data;
  const spaceName = (id: string) => metal.spaces.find((m) => m.spaceId === id)?.spaceName ?? id;
  const glazeName = (id: string | null) => {
    const g = glazes.find((x) => x.id === id);
    return g ? `${g.name}${g.version ? `@${g.version}` : ''}` : '—';
  };
  return (
    <section aria-labelledby="metal-title">
      <p>
        <Link to="/">← Fleet</Link>
      </p>
      <h1 id="metal-title">{metal.name}</h1>
      <p className="mono small">{metal.id}</p>
      <p data-testid="metal-status">
        {metal.blocked ? (
          <span className="badge state-blocked">Blocked at every gateway</span>
        ) : (
          <span className="badge state-active">Not blocked</span>
        )}{' '}
        {metal.retiredAt ? (
          <span className="badge state-unseen">
            Retired <At iso={metal.retiredAt} />
          </span>
        ) : null}
      </p>
      {metal.retiredAt ? <p>This metal was retired: its certificates are revoked and it never enrolls again. Declare it anew to use the machine again.</p> : null}
      {notice ? (
        <p role="status" className="notice">
          {notice}
        </p>
      ) : null}
      <div className="actions">
        <ConfirmButton label="Block" title={`Block ${metal.name}?`} confirmLabel="Block at every gateway" danger action={async () => {
          const r = await api<{ gateways: number }>('POST', `/api/v1/metals/${metal.id}/block`, reason ? { reason } : {});
          setNotice(`Block sent to ${r.gateways} gateway${r.gateways === 1 ? '' : 's'}; rows turn Blocked as each applies it.`);
          reload();
        }}>
          <p>Every interface of this metal is blocked at all your gateways until you unblock it.</p>
          <label htmlFor="block-reason">Reason (optional)</label>
          <input id="block-reason" value={reason} onChange={(e) => setReason(e.target.value)} />
        </ConfirmButton>
        <ConfirmButton label="Unblock" title={`Unblock ${metal.name}?`} confirmLabel="Unblock" action={async () => {
          const r = await api<{ gateways: number }>('POST', `/api/v1/metals/${metal.id}/unblock`);
          setNotice(`Unblock sent to ${r.gateways} gateway${r.gateways === 1 ? '' : 's'}.`);
          reload();
        }}>
          <p>Its interfaces may register again and become Active.</p>
        </ConfirmButton>
        <ConfirmButton label="Delete" title={`Delete ${metal.name}?`} confirmLabel="Delete metal" danger action={async () => {
          await api('DELETE', `/api/v1/metals/${metal.id}`);
          navigate('/');
        }}>
          <p>The metal and its Space memberships are deleted. This cannot be undone.</p>
        </ConfirmButton>
      </div>

      <h2>Interfaces</h2>
      <div className="table-wrap">
        <table aria-label="Interfaces and their state per gateway">
          <thead>
            <tr>
              <th scope="col">Interface</th>
              <th scope="col">MAC</th>
              <th scope="col">Type</th>
              <th scope="col">Gateway</th>
              <th scope="col">State</th>
              <th scope="col">IP</th>
              <th scope="col">Reason</th>
              <th scope="col">Last seen</th>
            </tr>
          </thead>
          <tbody>
            {metal.interfaces.flatMap((i) => {
              const rows = states.filter((s) => s.mac === i.mac.toLowerCase());
              const head = (
                <>
                  <th scope="row">{i.name}</th>
                  <td className="mono">{i.mac}</td>
                  <td>
                    {i.type}
                    {i.pxe ? ', PXE' : ''}
                  </td>
                </>
              );
              if (rows.length === 0) {
                return [
                  <tr key={i.mac} data-mac={i.mac}>
                    {head}
                    <td colSpan={5}>
                      <span className="badge state-unseen">Not seen</span> <span className="muted">no gateway has reported this interface</span>
                    </td>
                  </tr>,
                ];
              }
              return rows.map((s) => (
                <tr key={`${i.mac}-${s.gatewayId}`} data-mac={i.mac}>
                  {head}
                  <td>
                    <Link to={`/gateways/${s.gatewayId}`}>{s.gatewayName}</Link>
                  </td>
                  <td>
                    <StateBadge state={s.state} />
                  </td>
                  <td className="mono">{s.ip ?? '—'}</td>
                  <td>{s.reason ?? '—'}</td>
                  <td>{when(s.lastSeenAt)}</td>
                </tr>
              ));
            })}
          </tbody>
        </table>
      </div>

      <h2>Spaces</h2>
      {metal.spaces.length === 0 ? (
        <p>
          Not in any Space. Add it to a Phase 1 Space as its default (<Link to="/spaces">Spaces</Link>) so its gateway lets it in and it gets a Glaze.
        </p>
      ) : (
        <ul>
          {metal.spaces.map((m) => (
            <li key={m.spaceId}>
              <Link to={`/spaces/${m.spaceId}`}>{m.spaceName}</Link> (Phase {m.phase}, {m.interfaces.join(', ')}){m.isDefault ? <strong> — default</strong> : null}: Glaze{' '}
              {glazeName(spaces.find((s) => s.id === m.spaceId)?.glazeId ?? null)}
            </li>
          ))}
        </ul>
      )}
      <h2>Phase 1 jobs</h2>
      {jobs.length === 0 ? (
        <p>No Phase 1 job yet. One starts when this metal PXE-boots on a gateway's LAN with a default Phase 1 Space that has a signed Glaze.</p>
      ) : (
        <JobsTable jobs={jobs} label="Phase 1 jobs of this metal" showMetal={false} />
      )}
      <Installations metalId={metal.id} updates={metal.updates} spaceName={spaceName} onChange={reload} />
      <h2>Labels</h2>
      <p>
        {Object.keys(metal.labels).length === 0
          ? 'No labels.'
          : Object.entries(metal.labels).map(([k, v]) => (
              <span key={k} className="label">
                {k}={v}
              </span>
            ))}
      </p>
    </section>
  );
}

const reportWhat = (r: ReportOut) =>
  r.rolledBackTo ? `back to ${r.rolledBackTo.glazeId === null ? 'nothing TIPS installed' : `${r.rolledBackTo.glazeName ?? r.rolledBackTo.glazeId}${r.rolledBackTo.version ? `@${r.rolledBackTo.version}` : ''}`}` : '';

/** Phases 2–3 (T14–T16): what runs per Space, the reports, the events; a rollback behind a confirmation. */
function Installations({ metalId, updates, spaceName, onChange }: { metalId: string; updates: MetalUpdatesOut | undefined; spaceName: (id: string) => string; onChange: () => void }) {
  const [notice, setNotice] = useState<string>();
  if (!updates) return null;
  const rollback = async (glazeId?: string) => {
    const r = await api<{ spaces: unknown[]; notified: number }>('POST', `/api/v1/metals/${metalId}/rollback`, glazeId ? { glaze: glazeId } : {});
    setNotice(`Rollback asked in ${r.spaces.length} Space${r.spaces.length === 1 ? '' : 's'}; ${r.notified ? 'the metal was notified' : 'the metal sees it at its next pull'}. Its report will show here.`);
    onChange();
  };
  return (
    <>
      <h2>Installed Glazes</h2>
      {notice ? (
        <p role="status" className="notice">
          {notice}
        </p>
      ) : null}
      {updates.installed.length === 0 ? (
        <p>Nothing installed through Phases 2–3 yet. Put this metal in a Phase 2 or 3 Space whose Glaze is signed; its agent (tips-client) installs it and reports here.</p>
      ) : (
        <div className="table-wrap">
          <table aria-label="Installed Glazes per Space">
            <thead>
              <tr>
                <th scope="col">Space</th>
                <th scope="col">Glaze</th>
                <th scope="col">Sequence</th>
                <th scope="col">Installed</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {updates.installed.map((i) => (
                <tr key={i.spaceId} data-space={spaceName(i.spaceId)}>
                  <th scope="row">{spaceName(i.spaceId)}</th>
                  <td>
                    {i.glazeName ?? i.glazeId}
                    {i.version ? `@${i.version}` : ''}
                  </td>
                  <td>{i.sequence ?? '—'}</td>
                  <td>
                    <At iso={i.installedAt} />
                  </td>
                  <td>
                    <ConfirmButton label={`Roll back ${i.glazeName ?? i.glazeId}`} title={`Roll back ${i.glazeName ?? i.glazeId}?`} confirmLabel="Ask the metal to roll back" danger action={() => rollback(i.glazeId)}>
                      <p>
                        The metal goes back to what it ran before in {spaceName(i.spaceId)} (the kept archive, or the previous A/B slot) and reports it. Until it does, the request waits in its work list.
                      </p>
                    </ConfirmButton>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <h2>Report history</h2>
      {updates.history.length === 0 ? (
        <p>No signed report from this metal yet.</p>
      ) : (
        <div className="table-wrap">
          <table aria-label="Report history">
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Result</th>
                <th scope="col">Glaze</th>
                <th scope="col">Space</th>
                <th scope="col">Reason</th>
              </tr>
            </thead>
            <tbody>
              {updates.history.map((r) => (
                <tr key={r.id} data-result={r.result}>
                  <th scope="row">
                    <At iso={r.at} />
                  </th>
                  <td>
                    <span className={`badge ${r.result === 'installed' ? 'state-active' : r.result === 'failed' ? 'state-blocked' : 'state-pending'}`}>{r.result.replaceAll('_', ' ')}</span> {reportWhat(r)}
                  </td>
                  <td className="mono small">
                    {r.glazeId} seq {r.sequence}
                  </td>
                  <td>{spaceName(r.spaceId)}</td>
                  <td>{r.reason ?? '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <h2>Events</h2>
      {updates.events.length === 0 ? (
        <p>No events: no tamper report, refused authentication or rollback.</p>
      ) : (
        <div className="table-wrap">
          <table aria-label="Events of this metal">
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Event</th>
                <th scope="col">Detail</th>
              </tr>
            </thead>
            <tbody>
              {updates.events.map((e) => (
                <tr key={e.id} data-kind={e.kind}>
                  <th scope="row">
                    <At iso={e.createdAt} />
                  </th>
                  <td>
                    {e.kind.replaceAll('_', ' ')} <span className="muted small">({e.code})</span>
                  </td>
                  <td>
                    {e.kind === 'tamper' ? (
                      <Changes detail={e.detail} />
                    ) : typeof e.detail.from === 'string' ? (
                      <span className="mono small">
                        {e.detail.from} → {typeof e.detail.to === 'string' ? e.detail.to : 'nothing TIPS installed'}
                      </span>
                    ) : typeof e.detail.message === 'string' ? (
                      e.detail.message
                    ) : (
                      '—'
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
