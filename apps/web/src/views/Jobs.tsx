import { useState } from 'react';
import { get, type JobOut, type Page, q } from '../api.ts';
import { useLive } from '../live.ts';
import { Link } from '../router.tsx';
import { SelectField } from '../forms.tsx';
import { At, bytes, Empty, ErrorBox, Pager, useLoad, usePages } from '../ui.tsx';

// Phase 1 jobs (T13): a metal's way from PXE boot to an installed Glaze, state by state.

export const JOB_STATES = ['waiting_for_glaze', 'queued', 'booting', 'installing', 'installed', 'failed'] as const;
const JOB_CLASS: Record<string, string> = { installed: 'state-active', failed: 'state-blocked', waiting_for_glaze: 'state-unseen' };

export function JobState({ state }: { state: string }) {
  return <span className={`badge ${JOB_CLASS[state] ?? 'state-pending'}`}>{state.replaceAll('_', ' ')}</span>;
}

/** A table of jobs: state, engine, Glaze, reason, timestamps; each row opens its transitions. */
export function JobsTable({ jobs, label, showMetal = true }: { jobs: JobOut[]; label: string; showMetal?: boolean }) {
  return (
    <div className="table-wrap">
      <table aria-label={label}>
        <thead>
          <tr>
            <th scope="col">Job</th>
            {showMetal ? <th scope="col">Metal</th> : null}
            <th scope="col">State</th>
            <th scope="col">Engine</th>
            <th scope="col">Glaze</th>
            <th scope="col">Reason</th>
            <th scope="col">Created</th>
            <th scope="col">Updated</th>
          </tr>
        </thead>
        <tbody>
          {jobs.map((j) => (
            <tr key={j.id} data-job={j.id} data-state={j.state}>
              <th scope="row">
                <details>
                  <summary className="mono small">{j.id}</summary>
                  <ol className="plain small" aria-label={`Transitions of ${j.id}`}>
                    {j.transitions.map((t) => (
                      <li key={`${t.state}-${t.at}`}>
                        <At iso={t.at} /> → {t.state.replaceAll('_', ' ')}
                        {t.reason ? ` (${t.reason})` : ''}
                      </li>
                    ))}
                  </ol>
                  <p className="small muted">
                    over {j.interfaceName} ({j.mac}){j.claimed ? ', installer bound' : ''}
                  </p>
                </details>
              </th>
              {showMetal ? (
                <td>
                  <Link to={`/metals/${j.metalId}`}>{j.metalId}</Link>
                </td>
              ) : null}
              <td>
                <JobState state={j.state} />
              </td>
              <td>{j.engine}</td>
              <td>{j.glaze ? `${j.glaze.name} (seq ${j.glaze.sequence}, ${bytes(j.glaze.size)})` : <span className="muted">none yet</span>}</td>
              <td>
                {j.reason ?? '—'}
                {j.detail ? <div className="muted small">{j.detail}</div> : null}
              </td>
              <td>
                <At iso={j.createdAt} />
              </td>
              <td>
                <At iso={j.updatedAt} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** The fleet's Phase 1 jobs, newest first, filtered by state. */
export function JobsView() {
  const [state, setState] = useState('');
  const pages = usePages();
  const { data, error, reload } = useLoad(() => get<Page<JobOut>>(`/api/v1/provisioning/jobs${q({ state: state || undefined, limit: '50', cursor: pages.cursor })}`), [state, pages.cursor]);
  useLive((e) => e.kind === 'provisioning' || (e.kind === 'write' && (e.resource === 'metals' || e.resource === 'spaces')), reload);
  return (
    <section aria-labelledby="jobs-title">
      <h1 id="jobs-title">Phase 1 jobs</h1>
      <p className="muted">Each metal's first install (T13): waiting for a Glaze → queued → booting → installing → installed, or failed with the reason.</p>
      <form className="inline filters" aria-label="Filter jobs" onSubmit={(e) => e.preventDefault()}>
        <SelectField
          id="jobs-state"
          label="State"
          value={state}
          onChange={(v) => {
            pages.reset();
            setState(v);
          }}
          options={[['', 'any'], ...JOB_STATES.map((s): [string, string] => [s, s.replaceAll('_', ' ')])]}
        />
      </form>
      <ErrorBox error={error} what="Phase 1 jobs could not be loaded" />
      {data && data.items.length === 0 ? (
        <Empty title={state ? `No ${state.replaceAll('_', ' ')} jobs` : 'No Phase 1 jobs yet'}>
          <p>
            A job starts when a metal with a default Phase 1 Space PXE-boots on a gateway's LAN. Give the Space a signed Glaze (Glazes, Spaces), then power the metal on; or run{' '}
            <code>tips metal reprovision &lt;metal&gt;</code> to start again.
          </p>
        </Empty>
      ) : null}
      {data && data.items.length > 0 ? <JobsTable jobs={data.items} label="Phase 1 jobs" /> : null}
      <Pager label="Pages of jobs" pages={pages} nextCursor={data?.nextCursor} />
    </section>
  );
}
