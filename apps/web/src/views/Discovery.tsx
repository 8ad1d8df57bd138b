import { type FormEvent, useEffect, useRef, useState } from 'react';
import type uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { get, type Page, q, type Registration } from '../api.ts';
import { useLive } from '../live.ts';
import { Empty, ErrorBox, useLoad, when } from '../ui.tsx';

const BINS = 24;
/** How many failures the histogram counts (the newest); the table pages through all of them. */
const HISTOGRAM_SAMPLE = 1000;

/** Failures per time bin, from the oldest in the sample to now. */
const duration = (s: number) => (s >= 3600 ? `${(s / 3600).toFixed(1)} h` : s >= 60 ? `${Math.round(s / 60)} min` : `${s} s`);

export function histogram(items: { at: string }[], now: number): { x: number[]; y: number[]; binSeconds: number } {
  const times = items.map((i) => Date.parse(i.at) / 1000);
  const end = Math.ceil(now / 1000);
  const oldest = times.length ? Math.min(...times) : end - 3600;
  // At least the last hour, so a few recent failures read as a moment, not as the whole chart.
  const span = Math.max(end - oldest, 3600);
  const binSeconds = Math.ceil(span / BINS);
  const start = end - binSeconds * BINS;
  const x = Array.from({ length: BINS }, (_, i) => start + i * binSeconds);
  const y = new Array<number>(BINS).fill(0);
  for (const t of times) y[Math.min(BINS - 1, Math.max(0, Math.floor((t - start) / binSeconds)))]! += 1;
  return { x, y, binSeconds };
}

function Histogram({ items }: { items: Registration[] }) {
  const ref = useRef<HTMLDivElement>(null);
  const h = histogram(items, Date.now());
  const total = h.y.reduce((a, b) => a + b, 0);
  // biome-ignore lint/correctness/useExhaustiveDependencies: redrawn when the failures change
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    let plot: uPlot | undefined;
    let gone = false;
    // uPlot is loaded with this view only: the fleet's first paint does not wait for it.
    void import('uplot').then(({ default: UPlot }) => {
      if (gone) return;
      const width = Math.max(280, el.clientWidth);
      plot = new UPlot(
      {
        width,
        height: 180,
        legend: { show: false },
        cursor: { show: false },
        scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
        axes: [{ stroke: '#1f2937' }, { stroke: '#1f2937', label: 'failures' }],
        series: [{}, { label: 'failures', stroke: '#b42318', fill: 'rgba(180,35,24,0.35)', paths: UPlot.paths.bars!({ size: [0.9, 60] }), points: { show: false } }],
      },
      [h.x, h.y],
      el,
    );
    });
    return () => {
      gone = true;
      plot?.destroy();
    };
  }, [items]);
  return (
    <figure className="chart">
      <div ref={ref} role="img" aria-label={`Histogram of ${total} failed registrations over time, ${duration(h.binSeconds)} per bar`} data-total={total} />
      <figcaption className="muted">
        Failed registrations per {duration(h.binSeconds)} (the newest {Math.min(items.length, HISTOGRAM_SAMPLE)}).
      </figcaption>
    </figure>
  );
}

export function DiscoveryView() {
  const [filters, setFilters] = useState<{ mac?: string; reason?: string; since?: string }>({});
  const [draft, setDraft] = useState({ mac: '', reason: '', since: '' });
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const cursor = cursors[cursors.length - 1];
  const { data, error, reload } = useLoad(async () => {
    const [page, sample] = await Promise.all([
      get<Page<Registration>>(`/api/v1/discovery/failures${q({ ...filters, cursor, limit: '50' })}`),
      get<Page<Registration>>(`/api/v1/discovery/failures${q({ ...filters, limit: String(HISTOGRAM_SAMPLE) })}`),
    ]);
    return { page, sample: sample.items };
  }, [filters, cursor]);
  useLive((e) => e.kind === 'registration', reload);
  const apply = (e: FormEvent) => {
    e.preventDefault();
    setCursors([undefined]);
    setFilters({ mac: draft.mac.trim() || undefined, reason: draft.reason.trim() || undefined, since: draft.since ? new Date(draft.since).toISOString() : undefined });
  };
  return (
    <section aria-labelledby="disc-title">
      <h1 id="disc-title">Discovery failures</h1>
      <p className="muted">Interfaces your gateways saw that were not let in (T9): unknown MACs, blocked metals, metals without a default Space.</p>
      <form className="inline filters" onSubmit={apply} aria-label="Filter failures">
        <div>
          <label htmlFor="d-mac">MAC</label>
          <input id="d-mac" value={draft.mac} onChange={(e) => setDraft({ ...draft, mac: e.target.value })} />
        </div>
        <div>
          <label htmlFor="d-reason">Reason</label>
          <input id="d-reason" value={draft.reason} onChange={(e) => setDraft({ ...draft, reason: e.target.value })} placeholder="unknown_mac" />
        </div>
        <div>
          <label htmlFor="d-since">Since</label>
          <input id="d-since" type="datetime-local" value={draft.since} onChange={(e) => setDraft({ ...draft, since: e.target.value })} />
        </div>
        <button type="submit">Filter</button>
      </form>
      <ErrorBox error={error} what="Failures could not be loaded" />
      {data ? <Histogram items={data.sample} /> : null}
      {data && data.page.items.length === 0 ? (
        <Empty title="No failed registrations">
          <p>Nothing was refused{filters.mac || filters.reason || filters.since ? ' with these filters' : ''}. When a gateway sees an interface it may not let in, it appears here within a second.</p>
        </Empty>
      ) : null}
      {data && data.page.items.length > 0 ? (
        <div className="table-wrap">
          <table aria-label="Failed registrations">
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">MAC</th>
                <th scope="col">IP</th>
                <th scope="col">Hostname</th>
                <th scope="col">Gateway</th>
                <th scope="col">Reason</th>
              </tr>
            </thead>
            <tbody>
              {data.page.items.map((r) => (
                <tr key={`${r.at}-${r.mac}-${r.gatewayId}`} data-mac={r.mac}>
                  <th scope="row">
                    <time dateTime={r.at}>{when(r.at)}</time>
                  </th>
                  <td className="mono">{r.mac}</td>
                  <td className="mono">{r.ip}</td>
                  <td>{r.hostname ?? '—'}</td>
                  <td>{r.gatewayName ?? r.gatewayId}</td>
                  <td>{r.reason ?? r.decision}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      <nav className="pager" aria-label="Pages of failures">
        <button type="button" disabled={cursors.length === 1} onClick={() => setCursors(cursors.slice(0, -1))}>
          Previous page
        </button>
        <button type="button" disabled={!data?.page.nextCursor} onClick={() => data?.page.nextCursor && setCursors([...cursors, data.page.nextCursor])}>
          Next page
        </button>
      </nav>
    </section>
  );
}
