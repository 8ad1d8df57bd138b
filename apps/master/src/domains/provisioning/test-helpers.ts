// Fixtures for the provisioning tests: an owner's metal in a default Phase 1 Space whose Glaze has
// a signed manifest, an installer's Ed25519 key, and installer reports signed as the installer does.
import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { ALG_EDDSA, coseSign1Sign, encodeCbor, HEADER_ALG } from '@tips/suit';
import { expect } from 'vitest';
import type { TestMaster } from '../../testing.ts';

export const PXE_MAC = '02:70:00:00:00:01';
export const WIFI_MAC = '02:70:00:00:00:02';

export async function ok(m: TestMaster, token: string, method: 'GET' | 'POST' | 'PATCH', url: string, payload?: unknown, headers: Record<string, string> = {}) {
  const r = await m.app.inject({ method, url, headers: { ...m.auth(token), ...headers }, payload: payload as string });
  expect(r.statusCode, `${method} ${url}: ${r.body}`).toBeLessThan(300);
  return r;
}

/** Uploads a Glaze allowed in `spaces` and signs its manifest with the owner's server-held key. */
export async function signedGlaze(m: TestMaster, token: string, name: string, bytes: Buffer, spaces: string[], sequenceNumber: number, key = 'op-key') {
  const g = (await ok(m, token, 'POST', `/api/v1/glazes?name=${name}&spaces=${spaces.join(',')}`, bytes, { 'content-type': 'application/octet-stream' })).json();
  const keys = (await ok(m, token, 'GET', '/api/v1/keys')).json().items as { name: string }[];
  if (!keys.some((k) => k.name === key)) await ok(m, token, 'POST', '/api/v1/keys', { name: key, serverHeld: true });
  await ok(m, token, 'POST', `/api/v1/glazes/${g.id}/manifest/sign`, { key, sequenceNumber, vendorDomain: 'example.com', classInfo: 'pi', component: 'disk', uri: `https://example.com/${name}` });
  return { id: g.id as string, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** A metal with a PXE ethernet and a Wi-Fi interface, default member of Space `space` (made if missing). */
export async function provisionableMetal(m: TestMaster, token: string, name: string, macs = [PXE_MAC, WIFI_MAC], space = 'base-os') {
  const metal = (
    await ok(m, token, 'POST', '/api/v1/metals', {
      name,
      interfaces: [
        { name: 'eth0', mac: macs[0], type: 'ethernet', pxe: true },
        { name: 'wlan0', mac: macs[1], type: 'wifi' },
      ],
    })
  ).json();
  const existing = await m.app.inject({ url: `/api/v1/spaces/${space}`, headers: m.auth(token) });
  if (existing.statusCode === 404) await ok(m, token, 'POST', '/api/v1/spaces', { name: space, phase: 1 });
  await ok(m, token, 'POST', `/api/v1/spaces/${space}/members`, { metal: name, interfaces: ['eth0'], default: true });
  return metal.id as string;
}

export interface Installer {
  key: KeyObject;
  /** base64url raw 32-byte Ed25519 public key, as `work` takes it. */
  publicRaw: string;
}
export function installerKey(): Installer {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { key: privateKey, publicRaw: publicKey.export({ format: 'jwk' }).x as string };
}

export interface ReportFields {
  jobId: string;
  result: 'installed' | 'failed';
  reason?: string | null;
  detail?: string | null;
  glazeSha256: string;
  bytesWritten?: number;
  disk?: string;
  at?: string;
}
/** The A4 payload as a CBOR map, in a COSE_Sign1 (EdDSA) by `key`. */
export function signedReport(key: KeyObject, f: ReportFields, extra: [string, unknown][] = []): Buffer {
  const payload = new Map<string, unknown>([
    ['jobId', f.jobId],
    ['result', f.result],
    ['reason', f.reason ?? null],
    ['detail', f.detail ?? null],
    ['glazeSha256', f.glazeSha256],
    ['bytesWritten', f.bytesWritten ?? 0],
    ['disk', f.disk ?? '/dev/vda'],
    ['at', f.at ?? '2026-11-29T10:00:00.000Z'],
    ...extra,
  ]);
  return Buffer.from(coseSign1Sign({ protectedHeaders: new Map([[HEADER_ALG, ALG_EDDSA]]), payload: encodeCbor(payload as never) }, { privateKey: key, alg: ALG_EDDSA }));
}

/** Pulls job ID and token out of a booting script. */
export function parseBootingScript(script: string): { jobId: string; token: string } {
  const m = /tips\.job=(p1j_[0-9a-z]{26}) tips\.token=([A-Za-z0-9_-]{43})/.exec(script);
  if (!m) throw new Error(`not a booting script: ${script}`);
  return { jobId: m[1]!, token: m[2]! };
}
