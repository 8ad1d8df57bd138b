import type { Lwm2mOut, Lwm2mQueuedOut } from '@tips/core';
import { useEffect, useState } from 'react';
import { type ApiError, api, get, type Glaze, type Page } from '../api.ts';
import { ConfirmButton, Field, Form, SelectField } from '../forms.tsx';
import { type LiveEvent, useLive } from '../live.ts';
import { Link, navigate } from '../router.tsx';
import { At, type Column, Empty, ErrorBox, Pager, Table, useLoad, usePages } from '../ui.tsx';

// Constrained devices (issue 12, Z5 S13): metals that registered over LwM2M (CoAP over DTLS), a
// device page that reads resources and starts a firmware update through object 5 — or, for a device
// in queue mode, queues them and shows them until the device wakes and answers — and the metal's
// DTLS pre-shared keys. Registrations, firmware progress and queued operations arrive over CoAP; the
// master announces them on the live stream (kind `metal`, resource `lwm2m`) and the views re-read.

type Device = Lwm2mOut & { metalId: string; metalName: string };
interface Psk {
  identity: string;
  createdAt: string;
  revokedAt: string | null;
}
/** An operation held for a queue-mode device (GET /metals/{ref}/lwm2m/queue). */
type QueuedOp = Lwm2mQueuedOut;

/** What an LwM2M device did over CoAP (registered, updated, answered, went offline), or an owner write to metals. */
const lwm2mChange = (e: LiveEvent) => (e.kind === 'metal' && e.resource === 'lwm2m') || (e.kind === 'write' && e.resource === 'metals');
/** A fleet of devices updates often: the list re-reads at most once a second. */
const LIST_REFRESH_MS = 1000;
/**
 * The live stream carries this replica's changes only, and a device's CoAP traffic may reach another
 * master replica: a slow re-read catches those (far slower than the stream, which is the way in).
 */
const OTHER_REPLICAS_MS = 30_000;

function useSlowReread(reload: () => void): void {
  useEffect(() => {
    const t = setInterval(reload, OTHER_REPLICAS_MS);
    return () => clearInterval(t);
  }, [reload]);
}

/** online, offline, or in queue mode (online, but it listens only right after it sends). */
export function RegistrationState({ d }: { d: Pick<Lwm2mOut, 'online' | 'queueMode'> }) {
  if (!d.online) return <span className="badge state-blocked">Offline</span>;
  if (d.queueMode) return <span className="badge state-pending">Queue mode</span>;
  return <span className="badge state-active">Online</span>;
}

const OP_STATE: Record<QueuedOp['status'], [string, string]> = {
  queued: ['state-pending', 'Queued'],
  sent: ['state-unseen', 'Sent'],
  done: ['state-active', 'Done'],
  failed: ['state-blocked', 'Failed'],
};
const valueText = (v: unknown) => (typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v));
const opResult = (o: QueuedOp) => {
  if (o.error) return `${o.error.message} (${o.error.code})`;
  if (o.records) return o.records.map((r) => `${r.path} = ${valueText(r.value)}`).join(', ') || 'no values';
  if (o.jobId) return `firmware job ${o.jobId} started (progress under Registration)`;
  return o.status === 'sent' ? 'waiting for the device’s answer' : 'sent when the device next updates';
};

const objectsText = (d: Lwm2mOut) => d.objects.map((o) => `/${o.objectId}${o.instances.length ? ` (${o.instances.length})` : ''}`).join(' ') || '—';
const fwText = (f: NonNullable<Lwm2mOut['firmware']>) => `${f.status}${f.state ? `, state ${f.state}` : ''}${f.result ? `, result ${f.result}` : ''}`;

export function DevicesView() {
  const pages = usePages();
  const { data, error, reload } = useLoad(() => get<Page<Device>>(`/api/v1/lwm2m/devices?limit=50${pages.cursor ? `&cursor=${encodeURIComponent(pages.cursor)}` : ''}`), [pages.cursor]);
  useLive(lwm2mChange, reload, LIST_REFRESH_MS);
  useSlowReread(reload);
  const [metal, setMetal] = useState('');
  return (
    <section aria-labelledby="devices-title">
      <h1 id="devices-title">Constrained devices (LwM2M)</h1>
      <p className="muted">Metals that speak LwM2M over CoAP and DTLS instead of HTTP: their registration, the objects they declared, and their firmware through object 5.</p>
      <Form
        label="Open a metal's LwM2M page"
        submit="Open"
        what="The page was not opened"
        action={async () => {
          navigate(`/lwm2m/${encodeURIComponent(metal.trim())}`);
        }}
      >
        <Field id="lwm2m-metal" label="Metal (name or TIPS ID)" required value={metal} onChange={setMetal} placeholder="sensor-1" />
      </Form>
      <ErrorBox error={error} what="LwM2M devices could not be loaded" />
      {data && data.items.length === 0 && !pages.cursor ? (
        <Empty title="No LwM2M device has registered">
          <ol>
            <li>
              Start the master with its CoAP port: <code>tips-master --coap-port 5684</code>.
            </li>
            <li>
              Declare the device as a metal (Fleet page), then issue it a DTLS key on its LwM2M page (open it above) or with <code>tips metal psk issue sensor-1</code>.
            </li>
            <li>
              Give the device the PSK identity and key; it registers at <code>coaps://…:5684/rd</code> with its TIPS ID or name as endpoint and appears here.
            </li>
          </ol>
        </Empty>
      ) : null}
      {data && data.items.length > 0 ? (
        <div className="table-wrap">
          <table aria-label="LwM2M devices">
            <thead>
              <tr>
                <th scope="col">Metal</th>
                <th scope="col">State</th>
                <th scope="col">Lifetime</th>
                <th scope="col">Binding</th>
                <th scope="col">Last update</th>
                <th scope="col">Objects</th>
                <th scope="col">Firmware</th>
              </tr>
            </thead>
            <tbody>
              {data.items.map((d) => (
                <tr key={d.metalId} data-metal={d.metalName}>
                  <th scope="row">
                    <Link to={`/lwm2m/${d.metalId}`}>{d.metalName}</Link>
                  </th>
                  <td>
                    <RegistrationState d={d} />
                  </td>
                  <td>{d.lifetime} s</td>
                  <td>{d.binding}</td>
                  <td>
                    <At iso={d.lastUpdate} />
                  </td>
                  <td className="mono small">{objectsText(d)}</td>
                  <td className="small">{d.firmware ? fwText(d.firmware) : '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      <Pager label="Pages of LwM2M devices" pages={pages} nextCursor={data?.nextCursor} />
    </section>
  );
}

export function DeviceView({ metalRef }: { metalRef: string }) {
  const metal = useLoad(() => get<{ id: string; name: string }>(`/api/v1/metals/${encodeURIComponent(metalRef)}`), [metalRef]);
  const reg = useLoad(() => get<Lwm2mOut>(`/api/v1/metals/${encodeURIComponent(metalRef)}/lwm2m`), [metalRef]);
  const queue = useLoad(() => get<{ items: QueuedOp[] }>(`/api/v1/metals/${encodeURIComponent(metalRef)}/lwm2m/queue`), [metalRef]);
  const glazes = useLoad(() => get<Page<Glaze>>('/api/v1/glazes?limit=200'), []);
  // It registers, updates, reports firmware progress, answers queued operations: live, not polled.
  useLive(lwm2mChange, () => {
    reg.reload();
    queue.reload();
  });
  useSlowReread(reg.reload);
  useSlowReread(queue.reload);
  const notRegistered = reg.error?.code === 'lwm2m_registration_not_found';
  const name = metal.data?.name ?? metalRef;
  return (
    <section aria-labelledby="device-title">
      <p>
        <Link to="/lwm2m">All LwM2M devices</Link>
      </p>
      <h1 id="device-title">{name}</h1>
      <ErrorBox error={metal.error} what="This metal could not be loaded" />
      {metal.data ? (
        <p>
          <Link to={`/metals/${metal.data.id}`}>Metal page of {name}</Link>
        </p>
      ) : null}
      <h2>Registration</h2>
      {notRegistered ? (
        <p data-testid="lwm2m-registration">Not registered over LwM2M yet. Issue a DTLS key below and give the device its identity and key; once it registers with its TIPS ID or name as endpoint, its registration shows here.</p>
      ) : (
        <ErrorBox error={reg.error} what="The registration could not be loaded" />
      )}
      {reg.data && !reg.error ? (
        <dl className="facts" data-testid="lwm2m-registration">
          <dt>State</dt>
          <dd>
            <RegistrationState d={reg.data} />
          </dd>
          <dt>Endpoint</dt>
          <dd className="mono">{reg.data.endpoint}</dd>
          <dt>LwM2M version</dt>
          <dd>{reg.data.lwm2mVersion}</dd>
          <dt>Lifetime</dt>
          <dd>{reg.data.lifetime} s</dd>
          <dt>Binding</dt>
          <dd>{reg.data.binding}</dd>
          <dt>Registered</dt>
          <dd>
            <At iso={reg.data.registeredAt} />
          </dd>
          <dt>Last update</dt>
          <dd>
            <At iso={reg.data.lastUpdate} />
          </dd>
          <dt>Objects</dt>
          <dd className="mono">{reg.data.objects.map((o) => `/${o.objectId}${o.instances.length ? `/${o.instances.join(',')}` : ''}${o.version ? ` v${o.version}` : ''}`).join('  ') || '—'}</dd>
          <dt>Firmware</dt>
          <dd data-testid="lwm2m-firmware">{reg.data.firmware ? fwText(reg.data.firmware) : 'No firmware update yet'}</dd>
        </dl>
      ) : null}
      {reg.data && !reg.error ? <Operations metalRef={metalRef} queueMode={reg.data.queueMode} queue={queue.data?.items} glazes={glazes.data?.items} onFirmware={reg.reload} onQueued={queue.reload} /> : null}
      {reg.data && !reg.error && (reg.data.queueMode || (queue.data?.items.length ?? 0) > 0) ? <Queue queueMode={reg.data.queueMode} items={queue.data?.items} error={queue.error} glazes={glazes.data?.items} /> : null}
      <Psks metalRef={metalRef} />
    </section>
  );
}

const VALUE_COLUMNS: Column<{ path: string; value: unknown }>[] = [
  { title: 'Path', cell: (r) => r.path, rowHeader: true, className: 'mono' },
  { title: 'Value', cell: (r) => valueText(r.value), className: 'mono' },
];

/** The 202 of a queue-mode device: what was queued, in words (not an error); once sent, how it ended (`now`: its row in the queue). */
function QueuedNotice({ op, now, testId }: { op: QueuedOp; now: QueuedOp | undefined; testId: string }) {
  const what = op.kind === 'read' ? `Read of ${op.target}` : 'Firmware update';
  const ended = now && (now.status === 'done' || now.status === 'failed') ? now.status : undefined;
  return (
    <p className="notice" role="status" data-testid={testId}>
      {ended ? `${what} was sent at the device's update: ${ended === 'done' ? 'done' : 'failed'}` : `${what} queued, will be sent when the device next updates`} (operation <span className="mono">{op.id}</span>, under Queued operations).
    </p>
  );
}

function Operations({
  metalRef,
  queueMode,
  queue,
  glazes,
  onFirmware,
  onQueued,
}: { metalRef: string; queueMode: boolean; queue: QueuedOp[] | undefined; glazes: Glaze[] | undefined; onFirmware: () => void; onQueued: () => void }) {
  const current = (op: QueuedOp) => queue?.find((o) => o.id === op.id);
  const [path, setPath] = useState('/3/0');
  const [records, setRecords] = useState<{ path: string; value: unknown }[]>();
  const [readQueued, setReadQueued] = useState<QueuedOp>();
  const [glaze, setGlaze] = useState('');
  const [started, setStarted] = useState<string>();
  const [fwQueued, setFwQueued] = useState<QueuedOp>();
  const chosen = glaze || glazes?.[0]?.id || '';
  const base = `/api/v1/metals/${encodeURIComponent(metalRef)}/lwm2m`;
  return (
    <>
      <h2>Read a resource</h2>
      {queueMode ? <p className="muted">The device is in queue mode: it sleeps between its registration updates, so a read waits for its next update.</p> : null}
      <Form
        label="Read from the device"
        submit="Read"
        what="The device was not read"
        action={async () => {
          setRecords(undefined);
          setReadQueued(undefined);
          const r = await api<{ records: { path: string; value: unknown }[] } | { queued: QueuedOp }>('POST', `${base}/read`, { path: path.trim() });
          if ('queued' in r) {
            setReadQueued(r.queued);
            onQueued();
          } else setRecords(r.records);
        }}
      >
        <Field id="lwm2m-path" label="Object, instance or resource path" required value={path} onChange={setPath} placeholder="/3/0/9" />
      </Form>
      {readQueued ? <QueuedNotice op={readQueued} now={current(readQueued)} testId="lwm2m-read-queued" /> : null}
      {records ? (
        records.length === 0 ? (
          <p>The device answered with no values.</p>
        ) : (
          <Table label="Values read" columns={VALUE_COLUMNS} rows={records} rowKey={(r) => r.path} rowAttrs={(r) => ({ 'data-path': r.path })} />
        )
      ) : null}
      <h2>Firmware update (object 5)</h2>
      {glazes && glazes.length === 0 ? (
        <p>No Glazes yet: upload one on the Glazes page, sign its manifest, and make it the Glaze of a Space this metal is in.</p>
      ) : (
        <Form
          label="Start a firmware update"
          submit="Update firmware"
          what="The firmware update did not start"
          action={async () => {
            setStarted(undefined);
            setFwQueued(undefined);
            const r = await api<{ jobId: string } | { queued: QueuedOp }>('POST', `${base}/firmware`, { glaze: chosen });
            if ('queued' in r) {
              setFwQueued(r.queued);
              onQueued();
              return;
            }
            setStarted(r.jobId);
            onFirmware();
          }}
        >
          <SelectField id="lwm2m-glaze" label="Glaze (signed, the Glaze of one of the metal's Spaces)" value={chosen} onChange={setGlaze} options={(glazes ?? []).map((g) => [g.id, glazeLabel(g)])} />
        </Form>
      )}
      {started ? (
        <p className="notice" role="status">
          Firmware job {started} started: the signed manifest and the package URI go to the device; its progress shows under Registration.
        </p>
      ) : null}
      {fwQueued ? <QueuedNotice op={fwQueued} now={current(fwQueued)} testId="lwm2m-firmware-queued" /> : null}
    </>
  );
}

const glazeLabel = (g: Glaze) => `${g.name}${g.version ? `@${g.version}` : ''}`;

/** The queue's columns; a firmware update names its Glaze when the page knows it (else its ID). */
const queueColumns = (glazes: Glaze[] | undefined): Column<QueuedOp>[] => [
  {
    title: 'Operation',
    cell: (o) => {
      const g = o.kind === 'firmware' ? glazes?.find((x) => x.id === o.target) : undefined;
      return `${o.kind} ${g ? glazeLabel(g) : o.target}`;
    },
    rowHeader: true,
    className: 'mono',
  },
  { title: 'Queued', cell: (o) => <At iso={o.createdAt} /> },
  {
    title: 'State',
    cell: (o) => {
      const [cls, label] = OP_STATE[o.status];
      return <span className={`badge ${cls}`}>{label}</span>;
    },
  },
  { title: 'Result', cell: opResult, className: 'small' },
  { title: 'Last change', cell: (o) => <At iso={o.updatedAt} /> },
];

/** Queue mode: what waits for the device's next update, and the last finished operations with their answers. */
function Queue({ queueMode, items, error, glazes }: { queueMode: boolean; items: QueuedOp[] | undefined; error: ApiError | undefined; glazes: Glaze[] | undefined }) {
  return (
    <>
      <h2 id="queue-title">Queued operations</h2>
      <p className="muted">
        {queueMode
          ? 'In queue mode (binding UQ) the device listens only right after it sends a registration update: what is asked meanwhile waits here and goes out, in order, at its next update.'
          : 'Operations queued while the device was in queue mode; it left queue mode, so new ones go out at once.'}
      </p>
      <ErrorBox error={error} what="The queued operations could not be loaded" />
      {items && items.length === 0 ? <p>Nothing queued: a read or a firmware update asked now waits here until the device next updates.</p> : null}
      {items && items.length > 0 ? <Table label="Queued operations" columns={queueColumns(glazes)} rows={items} rowKey={(o) => o.id} rowAttrs={(o) => ({ 'data-op': o.id, 'data-status': o.status })} /> : null}
    </>
  );
}

function Psks({ metalRef }: { metalRef: string }) {
  const list = useLoad(() => get<{ items: Psk[] }>(`/api/v1/metals/${encodeURIComponent(metalRef)}/psk`), [metalRef]);
  const [issued, setIssued] = useState<Psk & { key: string }>();
  const base = `/api/v1/metals/${encodeURIComponent(metalRef)}/psk`;
  return (
    <>
      <h2 id="psk-title">DTLS pre-shared keys</h2>
      <ErrorBox error={list.error} what="The keys could not be loaded" />
      <Form
        label="Issue a pre-shared key"
        submit="Issue a PSK"
        what="No key was issued"
        action={async () => {
          setIssued(await api<Psk & { key: string }>('POST', base));
          list.reload();
        }}
      >
        <span className="muted">At most 4 live keys per metal.</span>
      </Form>
      {issued ? (
        <div className="notice" role="status">
          <p>
            <strong>Copy the key now: it is shown only this once.</strong> Give both to the device (for example <code>coap-client -u IDENTITY -k KEY</code>).
          </p>
          <dl className="facts">
            <dt>Identity</dt>
            <dd className="mono" data-testid="psk-identity">
              {issued.identity}
            </dd>
            <dt>Key (hex)</dt>
            <dd className="mono" data-testid="psk-key">
              {issued.key}
            </dd>
          </dl>
        </div>
      ) : null}
      {list.data && list.data.items.length === 0 ? <p>No key issued for this metal yet.</p> : null}
      {list.data && list.data.items.length > 0 ? (
        <div className="table-wrap">
          <table aria-label="Pre-shared keys">
            <thead>
              <tr>
                <th scope="col">Identity</th>
                <th scope="col">Issued</th>
                <th scope="col">State</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.data.items.map((p) => (
                <tr key={p.identity} data-identity={p.identity}>
                  <th scope="row" className="mono">
                    {p.identity}
                  </th>
                  <td>
                    <At iso={p.createdAt} />
                  </td>
                  <td>{p.revokedAt ? <span className="badge state-blocked">Revoked</span> : <span className="badge state-active">Live</span>}</td>
                  <td>
                    {p.revokedAt ? null : (
                      <ConfirmButton
                        label={`Revoke ${p.identity}`}
                        title={`Revoke ${p.identity}?`}
                        confirmLabel="Revoke key"
                        danger
                        action={async () => {
                          await api('DELETE', `${base}/${encodeURIComponent(p.identity)}`);
                          if (issued?.identity === p.identity) setIssued(undefined);
                          list.reload();
                        }}
                      >
                        <p>New DTLS handshakes with this key are refused, and every CoAP request of a session made with it is refused. The device needs a new key to connect again.</p>
                      </ConfirmButton>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </>
  );
}
