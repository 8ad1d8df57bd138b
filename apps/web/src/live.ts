import { useEffect, useRef, useState } from 'react';

export interface LiveEvent {
  kind: 'table' | 'registration' | 'write' | 'provisioning' | 'metal';
  /** `write`: the collection changed; `metal`: what the metal sent (`reports`, `tamper`, `profile`, or `lwm2m` for a device's registration, update, answers). */
  resource?: string;
  gatewayId?: string;
  at: string;
}

type Listener = (e: LiveEvent) => void;
const listeners = new Set<Listener>();
const statusListeners = new Set<(s: LiveStatus) => void>();
export type LiveStatus = 'connecting' | 'live' | 'reconnecting';
let status: LiveStatus = 'connecting';
let source: EventSource | undefined;

function setStatus(s: LiveStatus) {
  status = s;
  for (const l of statusListeners) l(s);
}

/** One EventSource for the whole page (GET /api/v1/events); it reconnects by itself. */
export function startLive(): () => void {
  source?.close();
  source = new EventSource('/api/v1/events');
  source.addEventListener('ready', () => setStatus('live'));
  source.addEventListener('change', (m) => {
    const e = JSON.parse((m as MessageEvent<string>).data) as LiveEvent;
    for (const l of listeners) l(e);
  });
  source.onerror = () => setStatus('reconnecting');
  return () => {
    source?.close();
    source = undefined;
    setStatus('connecting');
  };
}

export function useLiveStatus(): LiveStatus {
  const [s, set] = useState(status);
  useEffect(() => {
    statusListeners.add(set);
    return () => {
      statusListeners.delete(set);
    };
  }, []);
  return s;
}

/**
 * Calls `refresh` at most once every `delayMs` while changes that `matches` arrive (the first one
 * starts the timer; later ones join it): a steady stream of changes — a fleet of LwM2M devices
 * updating — still refreshes the view, where a debounce would wait for a quiet moment that never comes.
 */
export function useLive(matches: (e: LiveEvent) => boolean, refresh: () => void, delayMs = 250): void {
  const ref = useRef({ matches, refresh });
  ref.current = { matches, refresh };
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const l: Listener = (e) => {
      if (!ref.current.matches(e) || timer !== undefined) return;
      timer = setTimeout(() => {
        timer = undefined;
        ref.current.refresh();
      }, delayMs);
    };
    listeners.add(l);
    return () => {
      clearTimeout(timer);
      listeners.delete(l);
    };
  }, [delayMs]);
}
