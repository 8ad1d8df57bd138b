import { type ReactNode, useCallback, useEffect, useState } from 'react';
import { ApiError } from './api.ts';

/** Loads `load()` now and whenever `reload()` is called; keeps the last data while reloading. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): { data: T | undefined; error: ApiError | undefined; loading: boolean; reload: () => void } {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<ApiError>();
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  // biome-ignore lint/correctness/useExhaustiveDependencies: the caller's deps decide when to load again
  useEffect(() => {
    let live = true;
    setLoading(true);
    load().then(
      (d) => {
        if (!live) return;
        setData(d);
        setError(undefined);
        setLoading(false);
      },
      (e: unknown) => {
        if (!live) return;
        setError(e instanceof ApiError ? e : new ApiError(0, 'client', String(e)));
        setLoading(false);
      },
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, loading, reload };
}

export function ErrorBox({ error, what }: { error: ApiError | undefined; what?: string }) {
  if (!error) return null;
  return (
    <div className="error" role="alert">
      <strong>{what ?? 'That did not work'}:</strong> {error.words}
      {error.requestId ? <span className="muted"> (request {error.requestId})</span> : null}
    </div>
  );
}

export function Empty({ title, children }: { title: string; children: ReactNode }) {
  return (
    <section className="empty" aria-label={title}>
      <h2>{title}</h2>
      {children}
    </section>
  );
}

const STATE_LABEL: Record<string, string> = { pending: 'Pending', active: 'Active', blocked: 'Blocked' };
export function StateBadge({ state }: { state: string }) {
  return <span className={`badge state-${state}`}>{STATE_LABEL[state] ?? state}</span>;
}

export function when(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  const s = Math.round((Date.now() - d.getTime()) / 1000);
  if (s < 60) return `${Math.max(s, 0)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return d.toISOString().slice(0, 16).replace('T', ' ');
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

/** Runs a form's action with its error shown beside it. */
export function useAction(): { busy: boolean; error: ApiError | undefined; run: (f: () => Promise<void>) => Promise<void>; clear: () => void } {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError>();
  const run = async (f: () => Promise<void>) => {
    setBusy(true);
    setError(undefined);
    try {
      await f();
    } catch (e) {
      setError(e instanceof ApiError ? e : new ApiError(0, 'client', String(e)));
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, run, clear: () => setError(undefined) };
}

/** Keyset pages go forward only: the cursors of the pages before are kept to go back. */
export function usePages(): { cursor: string | undefined; page: number; next: (c: string | null | undefined) => void; back: () => void; reset: () => void } {
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  return {
    cursor: cursors[cursors.length - 1],
    page: cursors.length,
    next: (c) => {
      if (c) setCursors([...cursors, c]);
    },
    back: () => setCursors(cursors.length > 1 ? cursors.slice(0, -1) : cursors),
    reset: () => setCursors([undefined]),
  };
}

/** Previous / next page buttons for a keyset list. */
export function Pager({ label, pages, nextCursor }: { label: string; pages: ReturnType<typeof usePages>; nextCursor: string | null | undefined }) {
  return (
    <nav className="pager" aria-label={label}>
      <button type="button" disabled={pages.page === 1} onClick={pages.back}>
        Previous page
      </button>
      <span aria-live="polite">Page {pages.page}</span>
      <button type="button" disabled={!nextCursor} onClick={() => pages.next(nextCursor)}>
        Next page
      </button>
    </nav>
  );
}

/** A timestamp as a `<time>` element: relative words, the exact instant in `title`. */
export function At({ iso }: { iso: string | null | undefined }) {
  if (!iso) return <span className="muted">—</span>;
  return (
    <time dateTime={iso} title={iso}>
      {when(iso)}
    </time>
  );
}

/** One column of a `Table`: its heading and what a row shows there; `rowHeader` makes the cell the row's header. */
export interface Column<T> {
  title: ReactNode;
  cell: (row: T) => ReactNode;
  rowHeader?: boolean;
  className?: string;
}

/** A labelled data table that scrolls inside its own box on a narrow screen. */
export function Table<T>({ label, columns, rows, rowKey, rowAttrs }: { label: string; columns: Column<T>[]; rows: T[]; rowKey: (row: T) => string; rowAttrs?: (row: T) => Record<string, string> }) {
  return (
    <div className="table-wrap">
      <table aria-label={label}>
        <thead>
          <tr>
            {columns.map((c, i) => (
              // biome-ignore lint/suspicious/noArrayIndexKey: the columns are fixed for a table
              <th key={i} scope="col">
                {c.title}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={rowKey(r)} {...rowAttrs?.(r)}>
              {columns.map((c, i) =>
                c.rowHeader ? (
                  // biome-ignore lint/suspicious/noArrayIndexKey: the columns are fixed for a table
                  <th key={i} scope="row" className={c.className}>
                    {c.cell(r)}
                  </th>
                ) : (
                  // biome-ignore lint/suspicious/noArrayIndexKey: the columns are fixed for a table
                  <td key={i} className={c.className}>
                    {c.cell(r)}
                  </td>
                ),
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
