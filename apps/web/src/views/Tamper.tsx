import { get, type Page, type TamperEventOut } from '../api.ts';
import { useLive } from '../live.ts';
import { Link } from '../router.tsx';
import { At, Empty, ErrorBox, Pager, useLoad, usePages } from '../ui.tsx';

interface Change {
  kind: string;
  path: string;
  detail: string;
}
export const changesOf = (detail: Record<string, unknown>): Change[] => (Array.isArray(detail.changes) ? (detail.changes as Change[]) : []);

/** What a tamper report says changed, one line each. */
export function Changes({ detail }: { detail: Record<string, unknown> }) {
  const changes = changesOf(detail);
  if (changes.length === 0) return <span className="muted">—</span>;
  return (
    <ul className="plain small">
      {changes.map((c) => (
        <li key={`${c.kind}-${c.path}`}>
          <strong>{c.kind}</strong> <span className="mono">{c.path}</span>
          {c.detail ? ` (${c.detail})` : ''}
        </li>
      ))}
    </ul>
  );
}

/** T16: software installed outside TIPS, as the metals reported it; each report blocked its metal. */
export function TamperView() {
  const pages = usePages();
  const { data, error, reload } = useLoad(() => get<Page<TamperEventOut>>(`/api/v1/tamper-events?limit=50${pages.cursor ? `&cursor=${encodeURIComponent(pages.cursor)}` : ''}`), [pages.cursor]);
  useLive((e) => (e.kind === 'metal' && e.resource === 'tamper') || (e.kind === 'write' && e.resource === 'metals'), reload);
  return (
    <section aria-labelledby="tamper-title">
      <h1 id="tamper-title">Tamper events</h1>
      <p className="muted">A metal that finds software installed outside TIPS (a dpkg -i, a changed managed file) reports it; the master blocks every interface of that metal at every gateway (T16).</p>
      <ErrorBox error={error} what="Tamper events could not be loaded" />
      {data && data.items.length === 0 ? (
        <Empty title="No tamper events">
          <p>No metal has reported a change made outside TIPS. If one does, it shows here with what changed, and the metal is blocked until you unblock it on its page.</p>
        </Empty>
      ) : null}
      {data && data.items.length > 0 ? (
        <div className="table-wrap">
          <table aria-label="Tamper events">
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Metal</th>
                <th scope="col">What changed</th>
                <th scope="col">Metal now</th>
              </tr>
            </thead>
            <tbody>
              {data.items.map((e) => (
                <tr key={e.id} data-metal={e.metalName}>
                  <th scope="row">
                    <At iso={e.createdAt} />
                  </th>
                  <td>
                    <Link to={`/metals/${e.metalId}`}>{e.metalName}</Link>
                  </td>
                  <td>
                    <Changes detail={e.detail} />
                  </td>
                  <td>{e.blocked ? <span className="badge state-blocked">Blocked</span> : <span className="badge state-unseen">Unblocked since</span>}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      <Pager label="Pages of tamper events" pages={pages} nextCursor={data?.nextCursor} />
    </section>
  );
}
