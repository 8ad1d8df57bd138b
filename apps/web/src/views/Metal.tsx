import { useState } from 'react';
import { api, get, type IfaceState, type Metal, q, type Space } from '../api.ts';
import { useLive } from '../live.ts';
import { Link, navigate } from '../router.tsx';
import { ConfirmButton, ErrorBox, StateBadge, useLoad, when } from '../ui.tsx';

interface Membership {
  spaceId: string;
  spaceName: string;
  phase: number;
  interfaces: string[];
  isDefault: boolean;
}
type MetalDetail = Metal & { spaces: Membership[]; phase1: { state: string; reason: string | null } | null };

async function loadMetal(ref: string) {
  const metal = await get<MetalDetail>(`/api/v1/metals/${encodeURIComponent(ref)}`);
  const macs = metal.interfaces.map((i) => i.mac).join(',');
  const [states, spaces] = await Promise.all([
    macs ? get<{ items: IfaceState[] }>(`/api/v1/interface-states${q({ macs })}`) : { items: [] },
    Promise.all(metal.spaces.map((s) => get<Space>(`/api/v1/spaces/${s.spaceId}`))),
  ]);
  const glazeIds = [...new Set(spaces.map((s) => s.glazeId).filter((g): g is string => g !== null))];
  const glazes = await Promise.all(glazeIds.map((g) => get<{ id: string; name: string; version: string | null }>(`/api/v1/glazes/${g}`)));
  return { metal, states: states.items, spaces, glazes };
}

export function MetalView({ metalRef }: { metalRef: string }) {
  const { data, error, reload } = useLoad(() => loadMetal(metalRef), [metalRef]);
  const [reason, setReason] = useState('');
  const [notice, setNotice] = useState<string>();
  useLive((e) => e.kind === 'table' || e.kind === 'write', reload);
  if (error) return <ErrorBox error={error} what={`Metal ${metalRef} could not be loaded`} />;
  if (!data) return <p aria-busy="true">Loading…</p>;
  const { metal, states, spaces, glazes } = data;
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
      {metal.phase1 ? (
        <p>
          Phase 1 job: <strong>{metal.phase1.state}</strong>
          {metal.phase1.reason ? ` (${metal.phase1.reason})` : ''}
        </p>
      ) : null}
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
