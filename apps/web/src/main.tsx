import { type FormEvent, StrictMode, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { api, ApiError, get, type Owner, SIGNED_OUT } from './api.ts';
import { startLive, useLiveStatus } from './live.ts';
import { Link, navigate, usePath } from './router.tsx';
import './styles.css';
import { ErrorBox } from './ui.tsx';
import { DeviceView, DevicesView } from './views/Devices.tsx';
import { DiscoveryView } from './views/Discovery.tsx';
import { FleetView } from './views/Fleet.tsx';
import { GatewayView, GatewaysView } from './views/Gateways.tsx';
import { GlazesView } from './views/Glazes.tsx';
import { JobsView } from './views/Jobs.tsx';
import { MetalView } from './views/Metal.tsx';
import { OnboardingView } from './views/Onboarding.tsx';
import { TamperView } from './views/Tamper.tsx';
import { SpacesView, SpaceView } from './views/Spaces.tsx';

interface Session {
  owner: Owner;
  csrfToken: string | null;
  expiresAt: string | null;
}

function SignIn({ onSignedIn }: { onSignedIn: (s: Session) => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<ApiError>();
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      // The token goes to the master once and is forgotten: the session lives in an HttpOnly cookie.
      const s = await api<Session>('POST', '/api/v1/session', { token: token.trim() });
      setToken('');
      onSignedIn(s);
    } catch (err) {
      setError(err instanceof ApiError ? err : new ApiError(0, 'client', String(err)));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main id="main" className="signin">
      <h1>TIPS console</h1>
      <form onSubmit={submit} aria-describedby="signin-help">
        <label htmlFor="token">API token</label>
        <input id="token" name="token" type="password" autoComplete="current-password" required value={token} onChange={(e) => setToken(e.target.value)} placeholder="tips_…" />
        <button type="submit" className="primary" disabled={busy}>
          Sign in
        </button>
      </form>
      {error ? <ErrorBox error={error.status === 401 ? new ApiError(401, error.code, 'That token is not valid. Check it was copied whole, or make a new one.') : error} what="Not signed in" /> : null}
      <p id="signin-help" className="muted">
        Use an owner API token: the one <code>tips-master</code> printed at its first start, or one made with <code>tips token create --name console</code>. The token is exchanged for a session cookie and is not stored in this browser.
      </p>
    </main>
  );
}

const NAV = [
  { to: '/', label: 'Fleet', match: (p: string) => p === '/' || p.startsWith('/metals') },
  { to: '/spaces', label: 'Spaces', match: (p: string) => p.startsWith('/spaces') },
  { to: '/glazes', label: 'Glazes', match: (p: string) => p.startsWith('/glazes') },
  { to: '/gateways', label: 'Gateways', match: (p: string) => p.startsWith('/gateways') },
  { to: '/jobs', label: 'Phase 1', match: (p: string) => p.startsWith('/jobs') },
  { to: '/tamper', label: 'Tamper', match: (p: string) => p.startsWith('/tamper') },
  { to: '/onboarding', label: 'Onboarding', match: (p: string) => p.startsWith('/onboarding') },
  { to: '/lwm2m', label: 'LwM2M', match: (p: string) => p.startsWith('/lwm2m') },
  { to: '/discovery', label: 'Discovery', match: (p: string) => p.startsWith('/discovery') },
];

function Page({ path }: { path: string }) {
  const seg = path.split('/').filter(Boolean).map(decodeURIComponent);
  if (seg.length === 0) return <FleetView />;
  if (seg[0] === 'metals' && seg[1]) return <MetalView key={seg[1]} metalRef={seg[1]} />;
  if (seg[0] === 'spaces') return seg[1] ? <SpaceView key={seg[1]} spaceRef={seg[1]} /> : <SpacesView />;
  if (seg[0] === 'glazes') return <GlazesView />;
  if (seg[0] === 'gateways') return seg[1] ? <GatewayView key={seg[1]} gatewayRef={seg[1]} /> : <GatewaysView />;
  if (seg[0] === 'discovery') return <DiscoveryView />;
  if (seg[0] === 'jobs') return <JobsView />;
  if (seg[0] === 'tamper') return <TamperView />;
  if (seg[0] === 'onboarding') return <OnboardingView />;
  if (seg[0] === 'lwm2m') return seg[1] ? <DeviceView key={seg[1]} metalRef={seg[1]} /> : <DevicesView />;
  return (
    <section>
      <h1>Not found</h1>
      <p>
        There is no page at {path}. <Link to="/">Go to the fleet</Link>.
      </p>
    </section>
  );
}

function Shell({ session, onSignOut }: { session: Session; onSignOut: () => void }) {
  const path = usePath();
  const live = useLiveStatus();
  useEffect(() => startLive(), []);
  const signOut = async () => {
    await api('DELETE', '/api/v1/session').catch(() => undefined);
    onSignOut();
    navigate('/');
  };
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <span className="brand">TIPS</span>
        <nav aria-label="Main">
          <ul>
            {NAV.map((n) => (
              <li key={n.to}>
                <Link to={n.to} current={n.match(path)}>
                  {n.label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <span className={`live live-${live}`} role="status" aria-live="polite">
          {live === 'live' ? 'Live' : live === 'connecting' ? 'Connecting…' : 'Reconnecting…'}
        </span>
        <span className="who">{session.owner.name}</span>
        <button type="button" onClick={signOut}>
          Sign out
        </button>
      </header>
      <main id="main" tabIndex={-1}>
        <Page path={path} />
      </main>
    </>
  );
}

/** The readable CSRF cookie lives exactly as long as the session cookie: a session is likely. */
const likelySignedIn = () => document.cookie.split(';').some((c) => c.trim().startsWith('tips_csrf=') && c.trim().length > 'tips_csrf='.length);
const UNCONFIRMED: Session = { owner: { id: '', name: '', isAdmin: false }, csrfToken: null, expiresAt: null };

function App() {
  // With a likely session the views start loading at once, beside the session check (one round
  // trip less before the fleet shows); a refused session still lands on the sign-in page.
  const [session, setSession] = useState<Session | null | undefined>(likelySignedIn() ? UNCONFIRMED : undefined);
  useEffect(() => {
    get<Session>('/api/v1/session').then(setSession, () => setSession(null));
    const out = () => setSession(null);
    window.addEventListener(SIGNED_OUT, out);
    return () => window.removeEventListener(SIGNED_OUT, out);
  }, []);
  if (session === undefined) return <p className="loading">Loading…</p>;
  if (session === null) return <SignIn onSignedIn={setSession} />;
  return <Shell session={session} onSignOut={() => setSession(null)} />;
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
