import { useState } from 'react';
import { api, type Gateway, get, type Page, q } from '../api.ts';
import { useLive } from '../live.ts';
import { Link } from '../router.tsx';
import { Field, Form } from '../forms.tsx';
import { Empty, ErrorBox, StateBadge, useLoad, when } from '../ui.tsx';

interface Enrolled {
  gateway: Gateway;
  enrollmentToken: string;
  enroll: { master: string; command: string; httpsMaster: string | null; httpsCommand: string | null };
}

export function GatewaysView() {
  const { data, error, reload } = useLoad(() => get<Page<Gateway>>('/api/v1/gateways?limit=200'), []);
  useLive((e) => e.kind === 'table' || (e.kind === 'write' && e.resource === 'gateways'), reload);
  const [name, setName] = useState('');
  const [made, setMade] = useState<Enrolled>();
  const add = async () => {
    setMade(await api<Enrolled>('POST', '/api/v1/gateways', { name: name.trim() }));
    setName('');
    reload();
  };
  return (
    <section aria-labelledby="gw-title">
      <h1 id="gw-title">Gateways</h1>
      <Form label="Enroll a gateway" submit="Enroll a gateway" what="The gateway was not added" action={add}>
        <Field id="gw-name" label="Name" required value={name} onChange={setName} placeholder="site-berlin" />
      </Form>
      {made ? (
        <div className="panel enroll" role="status">
          <h2>Enroll {made.gateway.name}</h2>
          <p>
            Its one-time enrollment token (shown only now, valid until {made.gateway.enrollmentExpiresAt ?? '24 h from now'}, single use):
          </p>
          <pre className="mono" data-testid="enrollment-token">
            {made.enrollmentToken}
          </pre>
          <p>On the gateway, run:</p>
          <pre className="mono" data-testid="enroll-command">
            {made.enroll.command}
          </pre>
          {made.enroll.httpsCommand ? (
            <>
              <p>Or over HTTPS, verifying this master against the TIPS CA (<code>tips ca show &gt; tips-ca.pem</code>):</p>
              <pre className="mono">{made.enroll.httpsCommand}</pre>
            </>
          ) : null}
          <button type="button" onClick={() => void navigator.clipboard?.writeText(made.enroll.command)}>
            Copy command
          </button>
        </div>
      ) : null}
      <ErrorBox error={error} what="Gateways could not be loaded" />
      {data && data.items.length === 0 && !made ? (
        <Empty title="No gateways yet">
          <p>Enroll your first gateway: give it a name above, then run the command shown on the machine that serves DHCP to your metals.</p>
        </Empty>
      ) : null}
      {data && data.items.length > 0 ? (
        <div className="table-wrap">
          <table aria-label="Gateways">
            <thead>
              <tr>
                <th scope="col">Gateway</th>
                <th scope="col">Enrolled</th>
                <th scope="col">Channel</th>
                <th scope="col">Last seen</th>
              </tr>
            </thead>
            <tbody>
              {data.items.map((g) => (
                <tr key={g.id}>
                  <th scope="row">
                    <Link to={`/gateways/${g.id}`}>{g.name}</Link>
                  </th>
                  <td>{g.enrolled ? when(g.enrolledAt) : `waiting (token expires ${when(g.enrollmentExpiresAt)})`}</td>
                  <td>{g.connected ? 'connected' : 'not connected'}</td>
                  <td>{when(g.lastSeenAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </section>
  );
}

type Row = Record<string, unknown> & { mac: string; state: string };
/** A NAT entry as the gateway reports it (T11: protocol, local port, destination, translated address and port). */
interface Nat {
  protocol: string;
  localPort: number | null;
  destination: string;
  destinationPort: number | null;
  translatedAddress: string | null;
  outgoingPort: number | null;
}

const text = (v: unknown) => (v === null || v === undefined || v === '' ? '—' : String(v));

export function GatewayView({ gatewayRef }: { gatewayRef: string }) {
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const cursor = cursors[cursors.length - 1];
  const { data, error, reload } = useLoad(async () => {
    const g = await get<Gateway>(`/api/v1/gateways/${encodeURIComponent(gatewayRef)}`);
    const table = await get<{ updatedAt: string | null; items: Row[]; nextCursor: string | null }>(`/api/v1/gateways/${g.id}/interfaces${q({ cursor, limit: '100' })}`);
    return { g, table };
  }, [gatewayRef, cursor]);
  useLive(
    (e) => e.kind === 'table' && e.gatewayId === data?.g.id,
    () => {
      // A new snapshot voids the old cursors: start from its first page.
      if (cursors.length > 1) setCursors([undefined]);
      else reload();
    },
  );
  if (error) return <ErrorBox error={error} what={`Gateway ${gatewayRef} could not be loaded`} />;
  if (!data) return <p aria-busy="true">Loading…</p>;
  const { g, table } = data;
  return (
    <section aria-labelledby="gwd-title">
      <p>
        <Link to="/gateways">← Gateways</Link>
      </p>
      <h1 id="gwd-title">{g.name}</h1>
      <p>
        {g.connected ? 'Channel connected' : 'Channel not connected'} · last seen {when(g.lastSeenAt)} · table reported {when(table.updatedAt)}
      </p>
      <h2>Interface table</h2>
      {table.items.length === 0 ? (
        <p>{g.enrolled ? 'The gateway has reported no interfaces yet: they appear here as metals ask it for DHCP.' : 'Not enrolled yet: run the enroll command on the gateway.'}</p>
      ) : (
        <div className="table-wrap">
          <table aria-label="Interface table">
            <thead>
              <tr>
                <th scope="col">MAC</th>
                <th scope="col">IP</th>
                <th scope="col">TIPS ID</th>
                <th scope="col">State</th>
                <th scope="col">Type</th>
                <th scope="col">Gateway interface</th>
                <th scope="col">Reason</th>
                <th scope="col">NAT</th>
              </tr>
            </thead>
            <tbody>
              {table.items.map((r) => (
                <tr key={`${r.mac}-${text(r.gatewayInterface)}`} data-mac={r.mac}>
                  <th scope="row" className="mono">
                    {r.mac}
                  </th>
                  <td className="mono">{text(r.ip)}</td>
                  <td className="mono small">{typeof r.tipsId === 'string' ? <Link to={`/metals/${r.tipsId}`}>{r.tipsId}</Link> : '—'}</td>
                  <td>
                    <StateBadge state={r.state} />
                  </td>
                  <td>{text(r.type)}</td>
                  <td>{text(r.gatewayInterface)}</td>
                  <td>{text(r.reason)}</td>
                  <td className="mono small">
                    {Array.isArray(r.nat) && r.nat.length > 0
                      ? (r.nat as Nat[]).map((n, i) => (
                          // biome-ignore lint/suspicious/noArrayIndexKey: NAT entries have no identity of their own
                          <div key={i}>
                            {n.protocol} :{text(n.localPort)} → {n.destination}:{text(n.destinationPort)} as {text(n.translatedAddress)}:{text(n.outgoingPort)}
                          </div>
                        ))
                      : '—'}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <nav className="pager" aria-label="Pages of the interface table">
        <button type="button" disabled={cursors.length === 1} onClick={() => setCursors(cursors.slice(0, -1))}>
          Previous page
        </button>
        <button type="button" disabled={!table.nextCursor} onClick={() => table.nextCursor && setCursors([...cursors, table.nextCursor])}>
          Next page
        </button>
      </nav>
    </section>
  );
}
