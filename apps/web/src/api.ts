import type { InterfaceStateOut, PageOut, RegistrationOut } from '@tips/core';

export type { EventOut, JobOut, ManifestSignerOut, MetalUpdatesOut, ReportOut, TamperEventOut } from '@tips/core';

// The console's only way to the master: the public owner API, authenticated by the session cookie
// (HttpOnly, never readable here) and, on writes, the CSRF token from the tips_csrf cookie.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
    readonly requestId?: string,
  ) {
    super(message);
  }

  /** The error in words for a person: what went wrong and, where the API names it, which field. */
  get words(): string {
    const field = this.field ? ` (field: ${this.field})` : '';
    if (this.status === 0) return `${this.message} Check the connection and try again.`;
    return `${this.message}${field}`;
  }
}

/** Fired when the master no longer accepts the session: the app shows the sign-in page. */
export const SIGNED_OUT = 'tips:signed-out';

function csrfToken(): string | undefined {
  for (const part of document.cookie.split(';')) {
    const [k, v] = part.trim().split('=');
    if (k === 'tips_csrf' && v) return v;
  }
  return undefined;
}

async function toError(r: Response): Promise<ApiError> {
  try {
    const body = (await r.json()) as { error?: { code: string; message: string; field?: string }; requestId?: string };
    if (body.error) return new ApiError(r.status, body.error.code, body.error.message, body.error.field, body.requestId);
  } catch {
    // not the API's error shape (a proxy's page): fall through
  }
  return new ApiError(r.status, 'http_error', `The master answered ${r.status} ${r.statusText}.`);
}

export async function api<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET') headers['x-tips-csrf'] = csrfToken() ?? '';
  let r: Response;
  try {
    r = await fetch(path, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, 'network', 'The master could not be reached.');
  }
  if (r.status === 401 && path !== '/api/v1/session') window.dispatchEvent(new Event(SIGNED_OUT));
  if (!r.ok) throw await toError(r);
  if (r.status === 204) return undefined as T;
  return (await r.json()) as T;
}

export const get = <T>(path: string) => api<T>('GET', path);

/** Uploads bytes with progress (fetch cannot report upload progress; XMLHttpRequest can). */
export function upload<T>(path: string, file: Blob, onProgress: (sent: number, total: number) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', path);
    xhr.setRequestHeader('content-type', 'application/octet-stream');
    xhr.setRequestHeader('accept', 'application/json');
    xhr.setRequestHeader('x-tips-csrf', csrfToken() ?? '');
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.onerror = () => reject(new ApiError(0, 'network', 'The upload was interrupted.'));
    xhr.onload = () => {
      let body: { error?: { code: string; message: string; field?: string }; requestId?: string } | undefined;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = undefined;
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body as T);
      else if (body?.error) reject(new ApiError(xhr.status, body.error.code, body.error.message, body.error.field, body.requestId));
      else reject(new ApiError(xhr.status, 'http_error', `The master answered ${xhr.status}.`));
    };
    xhr.send(file);
  });
}

export type Page<T> = PageOut<T>;

export interface Owner {
  id: string;
  name: string;
  isAdmin: boolean;
}
export interface Iface {
  name: string;
  mac: string;
  type: string;
  pxe: boolean;
}
export interface Metal {
  id: string;
  name: string;
  labels: Record<string, string>;
  interfaces: Iface[];
  engine: string | null;
  createdAt: string;
}
export type IfaceState = InterfaceStateOut;
export interface Space {
  id: string;
  name: string;
  phase: number;
  glazeId: string | null;
  engine: string;
  createdAt: string;
}
export interface Glaze {
  id: string;
  name: string;
  size: number;
  sha256: string;
  mediaType: string;
  createdAt: string;
  spaces: string[];
  handler: string;
  version: string | null;
}
export interface Gateway {
  id: string;
  name: string;
  enrolled: boolean;
  connected: boolean;
  enrolledName: string | null;
  enrolledAt: string | null;
  enrollmentExpiresAt: string | null;
  createdAt: string;
  lastSeenAt: string | null;
}
export type Registration = RegistrationOut;

export const q = (params: Record<string, string | undefined>) => {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') s.set(k, v);
  const t = s.toString();
  return t ? `?${t}` : '';
};
