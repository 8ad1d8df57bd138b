import { type FormEvent, useEffect, useState } from 'react';
import { ApiError, api, get, type Glaze, type ManifestSignerOut, type Page, q, type Space, upload } from '../api.ts';
import { useLive } from '../live.ts';
import { CheckField, ConfirmButton, Field } from '../forms.tsx';
import { bytes, Empty, ErrorBox, useLoad, when } from '../ui.tsx';

function UploadGlaze({ spaces, onDone }: { spaces: Space[]; onDone: () => void }) {
  const [file, setFile] = useState<File>();
  const [name, setName] = useState('');
  const [version, setVersion] = useState('');
  const [allowed, setAllowed] = useState<string[]>([]);
  const [progress, setProgress] = useState<{ sent: number; total: number }>();
  const [error, setError] = useState<ApiError>();
  const [done, setDone] = useState<string>();
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!file) return;
    setError(undefined);
    setDone(undefined);
    setProgress({ sent: 0, total: file.size });
    try {
      const g = await upload<Glaze>(
        `/api/v1/glazes${q({ name: name.trim() || file.name, version: version.trim() || undefined, spaces: allowed.join(',') || undefined })}`,
        file,
        (sent, total) => setProgress({ sent, total }),
      );
      setDone(`Uploaded ${g.name} (${bytes(g.size)}, sha256 ${g.sha256.slice(0, 12)}…).`);
      setFile(undefined);
      setName('');
      setVersion('');
      onDone();
    } catch (err) {
      setError(err instanceof ApiError ? err : new ApiError(0, 'client', String(err)));
    }
  };
  const pct = progress && progress.total > 0 ? Math.round((progress.sent / progress.total) * 100) : 0;
  return (
    <form className="stack" onSubmit={submit} aria-label="Upload a Glaze">
      <div>
        <label htmlFor="glaze-file">Image file</label>
        <input id="glaze-file" type="file" required onChange={(e) => setFile(e.target.files?.[0])} />
      </div>
      <div className="inline">
        <Field id="glaze-name" label="Name" value={name} onChange={setName} placeholder="the file's name" />
        <Field id="glaze-version" label="Version" value={version} onChange={setVersion} placeholder="1.0" />
      </div>
      <fieldset>
        <legend>Spaces that may use it</legend>
        {spaces.length === 0 ? <p className="muted">No Spaces yet; you can allow Spaces later.</p> : null}
        {spaces.map((s) => (
          <CheckField
            key={s.id}
            id={`allow-${s.id}`}
            label={`${s.name} (Phase ${s.phase})`}
            checked={allowed.includes(s.id)}
            onChange={(on) => setAllowed(on ? [...allowed, s.id] : allowed.filter((x) => x !== s.id))}
          />
        ))}
      </fieldset>
      <button type="submit" className="primary" disabled={!file || (progress !== undefined && !done && !error && pct < 100)}>
        Upload
      </button>
      {progress ? (
        <div className="progress">
          <label htmlFor="glaze-progress">Upload progress</label>
          <progress id="glaze-progress" max={progress.total || 1} value={progress.sent} />
          <span aria-live="polite">
            {pct}% ({bytes(progress.sent)} of {bytes(progress.total)})
          </span>
        </div>
      ) : null}
      <ErrorBox error={error} what="The Glaze was not uploaded" />
      {done ? (
        <p role="status" className="notice">
          {done}
        </p>
      ) : null}
    </form>
  );
}

/** The manifest's signer: the operator key's name and kid, the sequence number; or why it is not deliverable. */
function Signer({ m }: { m: ManifestSignerOut | undefined }) {
  if (!m) return <span className="muted">not signed: no metal accepts it yet</span>;
  const k = m.signedBy;
  return (
    <>
      <strong>{k.name}</strong>
      {k.revokedAt ? <span className="badge state-blocked">revoked</span> : null}
      {k.serverHeld ? <span className="badge">server-held</span> : null}
      <div className="muted mono small" title={`key ${k.id}`}>
        kid {k.kid.slice(0, 16)}… · {k.alg} · seq {m.sequenceNumber}
      </div>
    </>
  );
}

export function GlazesView() {
  const { data, error, reload } = useLoad(async () => {
    const [glazes, spaces] = await Promise.all([get<Page<Glaze>>('/api/v1/glazes?limit=200'), get<Page<Space>>('/api/v1/spaces?limit=200')]);
    // A Glaze is deliverable once an operator key signed its manifest (T12): who signed each, in one request.
    const signers = glazes.items.length ? await get<{ items: ManifestSignerOut[] }>(`/api/v1/manifests${q({ glazes: glazes.items.map((g) => g.id).join(',') })}`) : { items: [] };
    return { glazes: glazes.items, spaces: spaces.items, signers: new Map(signers.items.map((m) => [m.glazeId, m])) };
  }, []);
  useLive((e) => e.kind === 'write' && (e.resource === 'glazes' || e.resource === 'spaces'), reload);
  const spaceName = (id: string) => data?.spaces.find((s) => s.id === id)?.name ?? id;
  // Open while there is no Glaze; after that it stays as the user left it (an upload's result stays in view).
  const [open, setOpen] = useState(false);
  const none = data !== undefined && data.glazes.length === 0;
  useEffect(() => {
    if (none) setOpen(true);
  }, [none]);
  return (
    <section aria-labelledby="glazes-title">
      <h1 id="glazes-title">Glazes</h1>
      <details className="panel" open={open} onToggle={(e) => setOpen(e.currentTarget.open)}>
        <summary>Upload a Glaze</summary>
        <UploadGlaze spaces={data?.spaces ?? []} onDone={reload} />
      </details>
      <ErrorBox error={error} what="Glazes could not be loaded" />
      {data && data.glazes.length === 0 ? (
        <Empty title="No Glazes yet">
          <p>
            Upload your first Glaze (an image, archive or script) above, or run{' '}
            <code>tips glaze push ./image.img --name base --space lab-base --sign-key operator.pem</code> (which also signs its manifest). Then set it on a Space.
          </p>
        </Empty>
      ) : null}
      {data && data.glazes.length > 0 ? (
        <div className="table-wrap">
          <table aria-label="Glazes">
            <thead>
              <tr>
                <th scope="col">Glaze</th>
                <th scope="col">Size</th>
                <th scope="col">SHA-256</th>
                <th scope="col">Handler</th>
                <th scope="col">Spaces allowed</th>
                <th scope="col">Manifest signed by</th>
                <th scope="col">Uploaded</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {data.glazes.map((g) => (
                <tr key={g.id}>
                  <th scope="row">
                    {g.name}
                    {g.version ? `@${g.version}` : ''}
                    <div className="muted mono small">{g.id}</div>
                  </th>
                  <td>{bytes(g.size)}</td>
                  <td className="mono small" title={g.sha256}>
                    {g.sha256.slice(0, 16)}…
                  </td>
                  <td>{g.handler}</td>
                  <td>{g.spaces.map(spaceName).join(', ') || 'none'}</td>
                  <td data-testid="signer">
                    <Signer m={data.signers.get(g.id)} />
                  </td>
                  <td>{when(g.createdAt)}</td>
                  <td>
                    <ConfirmButton label="Delete" title={`Delete ${g.name}?`} confirmLabel="Delete Glaze" danger action={async () => {
                      await api('DELETE', `/api/v1/glazes/${g.id}`);
                      reload();
                    }}>
                      <p>The Glaze and its bytes are deleted. A Glaze a Space still uses cannot be deleted.</p>
                    </ConfirmButton>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </section>
  );
}
