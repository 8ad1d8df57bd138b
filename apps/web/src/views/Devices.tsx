import type { Lwm2mOut } from '@tips/core';
import { useEffect, useState } from 'react';
import { api, get, type Glaze, type Page } from '../api.ts';
import { ConfirmButton, Field, Form, SelectField } from '../forms.tsx';
import { Link, navigate } from '../router.tsx';
import { At, Empty, ErrorBox, Pager, useLoad, usePages } from '../ui.tsx';

// Constrained devices (issue 12, Z5 S13): metals that registered over LwM2M (CoAP over DTLS), a
// device page that reads resources and starts a firmware update through object 5, and the metal's
// DTLS pre-shared keys. Registrations do not travel on the live stream: the views re-read every few
// seconds while they are open.

type Device = Lwm2mOut & { metalId: string; metalName: string };
interface Psk {
  identity: string;
  createdAt: string;
  revokedAt: string | null;
}

// The device page re-reads every second while it waits (a registration, a firmware job); the list every 3 s.
const POLL_MS = 3000;
const FAST_POLL_MS = 1000;
const FW_RUNNING = new Set(['delivering', 'downloading', 'downloaded', 'updating']);

function usePoll(reload: () => void, on = true, ms = POLL_MS): void {
  useEffect(() => {
    if (!on) return;
    const t = setInterval(reload, ms);
    return () => clearInterval(t);
  }, [reload, on, ms]);
}

/** online, offline, or queued (online in queue mode: it listens only right after it sends). */
export function RegistrationState({ d }: { d: Pick<Lwm2mOut, 'online' | 'queueMode'> }) {
  if (!d.online) return <span className="badge state-blocked">Offline</span>;
  if (d.queueMode) return <span className="badge state-pending">Queued</span>;
  return <span className="badge state-active">Online</span>;
}

const objectsText = (d: Lwm2mOut) => d.objects.map((o) => `/${o.objectId}${o.instances.length ? ` (${o.instances.length})` : ''}`).join(' ') || '—';
const fwText = (f: NonNullable<Lwm2mOut['firmware']>) => `${f.status}${f.state ? `, state ${f.state}` : ''}${f.result ? `, result ${f.result}` : ''}`;

export function DevicesView() {
  const pages = usePages();
  const { data, error, reload } = useLoad(() => get<Page<Device>>(`/api/v1/lwm2m/devices?limit=50${pages.cursor ? `&cursor=${encodeURIComponent(pages.cursor)}` : ''}`), [pages.cursor]);
  usePoll(reload);
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
  const running = !!reg.data?.firmware && FW_RUNNING.has(reg.data.firmware.status);
  // Until it registers, and while a firmware job runs, the page re-reads the registration.
  usePoll(reg.reload, !reg.data || running, FAST_POLL_MS);
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
      {reg.data && !reg.error ? <Operations metalRef={metalRef} onFirmware={reg.reload} /> : null}
      <Psks metalRef={metalRef} />
    </section>
  );
}

function Operations({ metalRef, onFirmware }: { metalRef: string; onFirmware: () => void }) {
  const [path, setPath] = useState('/3/0');
  const [records, setRecords] = useState<{ path: string; value: unknown }[]>();
  const glazes = useLoad(() => get<Page<Glaze>>('/api/v1/glazes?limit=200'), []);
  const [glaze, setGlaze] = useState('');
  const [started, setStarted] = useState<string>();
  const chosen = glaze || glazes.data?.items[0]?.id || '';
  return (
    <>
      <h2>Read a resource</h2>
      <Form
        label="Read from the device"
        submit="Read"
        what="The device was not read"
        action={async () => {
          setRecords(undefined);
          setRecords((await api<{ records: { path: string; value: unknown }[] }>('POST', `/api/v1/metals/${encodeURIComponent(metalRef)}/lwm2m/read`, { path: path.trim() })).records);
        }}
      >
        <Field id="lwm2m-path" label="Object, instance or resource path" required value={path} onChange={setPath} placeholder="/3/0/9" />
      </Form>
      {records ? (
        records.length === 0 ? (
          <p>The device answered with no values.</p>
        ) : (
          <div className="table-wrap">
            <table aria-label="Values read">
              <thead>
                <tr>
                  <th scope="col">Path</th>
                  <th scope="col">Value</th>
                </tr>
              </thead>
              <tbody>
                {records.map((r) => (
                  <tr key={r.path} data-path={r.path}>
                    <th scope="row" className="mono">
                      {r.path}
                    </th>
                    <td className="mono">{typeof r.value === 'object' && r.value !== null ? JSON.stringify(r.value) : String(r.value)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )
      ) : null}
      <h2>Firmware update (object 5)</h2>
      {glazes.data && glazes.data.items.length === 0 ? (
        <p>No Glazes yet: upload one on the Glazes page, sign its manifest, and make it the Glaze of a Space this metal is in.</p>
      ) : (
        <Form
          label="Start a firmware update"
          submit="Update firmware"
          what="The firmware update did not start"
          action={async () => {
            const job = await api<{ jobId: string }>('POST', `/api/v1/metals/${encodeURIComponent(metalRef)}/lwm2m/firmware`, { glaze: chosen });
            setStarted(job.jobId);
            onFirmware();
          }}
        >
          <SelectField id="lwm2m-glaze" label="Glaze (signed, the Glaze of one of the metal's Spaces)" value={chosen} onChange={setGlaze} options={(glazes.data?.items ?? []).map((g) => [g.id, `${g.name}${g.version ? `@${g.version}` : ''}`])} />
        </Form>
      )}
      {started ? (
        <p className="notice" role="status">
          Firmware job {started} started: the signed manifest and the package URI go to the device; its progress shows under Registration.
        </p>
      ) : null}
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
