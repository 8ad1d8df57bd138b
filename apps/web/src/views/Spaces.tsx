import { type FormEvent, useState } from 'react';
import { api, get, type Glaze, type Page, q, type Space } from '../api.ts';
import { useLive } from '../live.ts';
import { Link, navigate } from '../router.tsx';
import { ConfirmButton, Empty, ErrorBox, useAction, useLoad } from '../ui.tsx';

export function SpacesView() {
  const { data, error, reload } = useLoad(() => get<Page<Space>>('/api/v1/spaces?limit=200'), []);
  useLive((e) => e.kind === 'write' && (e.resource === 'spaces' || e.resource === 'glazes'), reload);
  const [name, setName] = useState('');
  const [phase, setPhase] = useState('1');
  const a = useAction();
  const create = (e: FormEvent) => {
    e.preventDefault();
    void a.run(async () => {
      const s = await api<Space>('POST', '/api/v1/spaces', { name: name.trim(), phase: Number(phase) });
      setName('');
      navigate(`/spaces/${s.id}`);
    });
  };
  return (
    <section aria-labelledby="spaces-title">
      <h1 id="spaces-title">Spaces</h1>
      <form className="inline" onSubmit={create} aria-label="Create a Space">
        <div>
          <label htmlFor="space-name">Name</label>
          <input id="space-name" required value={name} onChange={(e) => setName(e.target.value)} placeholder="lab-base" />
        </div>
        <div>
          <label htmlFor="space-phase">Phase</label>
          <select id="space-phase" value={phase} onChange={(e) => setPhase(e.target.value)}>
            <option value="1">1: first install (PXE)</option>
            <option value="2">2: updates the metal pulls</option>
            <option value="3">3: updates pushed (MQTT hint)</option>
          </select>
        </div>
        <button type="submit" className="primary" disabled={a.busy}>
          Create Space
        </button>
        <ErrorBox error={a.error} what="The Space was not created" />
      </form>
      <ErrorBox error={error} what="Spaces could not be loaded" />
      {data && data.items.length === 0 ? (
        <Empty title="No Spaces yet">
          <p>Create a Phase 1 Space above (for example lab-base), then add your metals to it as their default: a gateway lets a metal in only when it has a default Phase 1 Space.</p>
        </Empty>
      ) : null}
      {data && data.items.length > 0 ? (
        <div className="table-wrap">
          <table aria-label="Spaces">
            <thead>
              <tr>
                <th scope="col">Space</th>
                <th scope="col">Phase</th>
                <th scope="col">Glaze</th>
                <th scope="col">Engine</th>
              </tr>
            </thead>
            <tbody>
              {data.items.map((s) => (
                <tr key={s.id}>
                  <th scope="row">
                    <Link to={`/spaces/${s.id}`}>{s.name}</Link>
                  </th>
                  <td>{s.phase}</td>
                  <td className="mono small">{s.glazeId ?? '—'}</td>
                  <td>{s.engine}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </section>
  );
}

interface SpaceDetail extends Space {
  members: { metalId: string; interfaces: string[]; isDefault: boolean }[];
  membersNextCursor: string | null;
}

export function SpaceView({ spaceRef }: { spaceRef: string }) {
  const { data, error, reload } = useLoad(async () => {
    const space = await get<SpaceDetail>(`/api/v1/spaces/${encodeURIComponent(spaceRef)}`);
    const glazes = await get<Page<Glaze>>(`/api/v1/glazes${q({ space: space.id, limit: '200' })}`);
    return { space, glazes: glazes.items };
  }, [spaceRef]);
  useLive((e) => e.kind === 'write', reload);
  const [metal, setMetal] = useState('');
  const [ifaces, setIfaces] = useState('eth0');
  const [isDefault, setIsDefault] = useState(true);
  const add = useAction();
  const setGlaze = useAction();
  if (error) return <ErrorBox error={error} what={`Space ${spaceRef} could not be loaded`} />;
  if (!data) return <p aria-busy="true">Loading…</p>;
  const { space, glazes } = data;
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void add.run(async () => {
      await api('POST', `/api/v1/spaces/${space.id}/members`, {
        metal: metal.trim(),
        interfaces: ifaces
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
        ...(space.phase === 1 ? { default: isDefault } : {}),
      });
      setMetal('');
      reload();
    });
  };
  return (
    <section aria-labelledby="space-title">
      <p>
        <Link to="/spaces">← Spaces</Link>
      </p>
      <h1 id="space-title">
        {space.name} <span className="muted">Phase {space.phase}</span>
      </h1>
      <h2>Glaze</h2>
      <div className="inline">
        <div>
          <label htmlFor="space-glaze">Glaze delivered to this Space</label>
          <select
            id="space-glaze"
            value={space.glazeId ?? ''}
            onChange={(e) => void setGlaze.run(async () => {
              await api('PATCH', `/api/v1/spaces/${space.id}`, { glaze: e.target.value || null });
              reload();
            })}
          >
            <option value="">none</option>
            {glazes.map((g) => (
              <option key={g.id} value={g.id}>
                {g.name}
                {g.version ? `@${g.version}` : ''}
              </option>
            ))}
          </select>
        </div>
      </div>
      {glazes.length === 0 ? <p className="muted">No Glaze allows this Space yet: upload one on the Glazes page and tick this Space.</p> : null}
      <ErrorBox error={setGlaze.error} what="The Glaze was not set" />
      <h2>Members</h2>
      <form className="inline" onSubmit={submit} aria-label="Add a member">
        <div>
          <label htmlFor="member-metal">Metal (name or TIPS ID)</label>
          <input id="member-metal" required value={metal} onChange={(e) => setMetal(e.target.value)} />
        </div>
        <div>
          <label htmlFor="member-ifaces">Interfaces (comma-separated)</label>
          <input id="member-ifaces" required value={ifaces} onChange={(e) => setIfaces(e.target.value)} />
        </div>
        {space.phase === 1 ? (
          <div className="check">
            <input id="member-default" type="checkbox" checked={isDefault} onChange={(e) => setIsDefault(e.target.checked)} />
            <label htmlFor="member-default">Its default Space</label>
          </div>
        ) : null}
        <button type="submit" className="primary" disabled={add.busy}>
          Add member
        </button>
        <ErrorBox error={add.error} what="The metal was not added" />
      </form>
      {space.members.length === 0 ? (
        <p>No members yet: add a metal by its name and the interfaces that link it to this Space.</p>
      ) : (
        <div className="table-wrap">
          <table aria-label="Members">
            <thead>
              <tr>
                <th scope="col">Metal</th>
                <th scope="col">Interfaces</th>
                <th scope="col">Default</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {space.members.map((m) => (
                <tr key={m.metalId}>
                  <th scope="row">
                    <Link to={`/metals/${m.metalId}`}>{m.metalId}</Link>
                  </th>
                  <td>{m.interfaces.join(', ')}</td>
                  <td>{m.isDefault ? 'yes' : 'no'}</td>
                  <td>
                    <ConfirmButton label={`Remove ${m.metalId}`} title="Remove from this Space?" confirmLabel="Remove" action={async () => {
                      await api('DELETE', `/api/v1/spaces/${space.id}/members/${m.metalId}`);
                      reload();
                    }}>
                      <p>The metal leaves {space.name}; the metal itself stays.</p>
                    </ConfirmButton>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {space.membersNextCursor ? <p className="muted">Showing the first {space.members.length} members.</p> : null}
    </section>
  );
}
