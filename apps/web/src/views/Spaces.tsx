import { useState } from 'react';
import { api, get, type Glaze, type Page, q, type Space } from '../api.ts';
import { useLive } from '../live.ts';
import { Link, navigate } from '../router.tsx';
import { CheckField, ConfirmButton, Field, Form, SelectField } from '../forms.tsx';
import { Empty, ErrorBox, useAction, useLoad } from '../ui.tsx';

export function SpacesView() {
  const { data, error, reload } = useLoad(() => get<Page<Space>>('/api/v1/spaces?limit=200'), []);
  useLive((e) => e.kind === 'write' && (e.resource === 'spaces' || e.resource === 'glazes'), reload);
  const [name, setName] = useState('');
  const [phase, setPhase] = useState('1');
  return (
    <section aria-labelledby="spaces-title">
      <h1 id="spaces-title">Spaces</h1>
      <Form
        label="Create a Space"
        submit="Create Space"
        what="The Space was not created"
        action={async () => {
          const s = await api<Space>('POST', '/api/v1/spaces', { name: name.trim(), phase: Number(phase) });
          setName('');
          navigate(`/spaces/${s.id}`);
        }}
      >
        <Field id="space-name" label="Name" required value={name} onChange={setName} placeholder="lab-base" />
        <SelectField
          id="space-phase"
          label="Phase"
          value={phase}
          onChange={setPhase}
          options={[
            ['1', '1: first install (PXE)'],
            ['2', '2: updates the metal pulls'],
            ['3', '3: updates pushed (MQTT hint)'],
          ]}
        />
      </Form>
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
  const setGlaze = useAction();
  if (error) return <ErrorBox error={error} what={`Space ${spaceRef} could not be loaded`} />;
  if (!data) return <p aria-busy="true">Loading…</p>;
  const { space, glazes } = data;
  const addMember = async () => {
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
      <Form label="Add a member" submit="Add member" what="The metal was not added" action={addMember}>
        <Field id="member-metal" label="Metal (name or TIPS ID)" required value={metal} onChange={setMetal} />
        <Field id="member-ifaces" label="Interfaces (comma-separated)" required value={ifaces} onChange={setIfaces} />
        {space.phase === 1 ? <CheckField id="member-default" label="Its default Space" checked={isDefault} onChange={setIsDefault} /> : null}
      </Form>
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
