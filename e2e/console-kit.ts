// Shared by the console's browser test, its screenshots and its bench: Debian's Chromium driven by
// playwright-core, axe-core injected into the page, and a gateway that speaks the real gateway API
// (TIPS-GW-1 signatures made by the gateway's own signer, the command channel over a WebSocket).
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { type Browser, chromium, type Page } from 'playwright-core';
import WebSocket from 'ws';
import { signedHeaders } from '../apps/gateway/src/uplink/sign.ts';

export const CHROMIUM = '/usr/bin/chromium';
/** STACK.md's flags: no sandbox (root in a VM), no GPU, nothing phoning home. */
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[] }[];
}

/** axe-core run inside the page (WCAG 2.x A/AA rules and best practices); the serious and critical violations. */
export async function seriousViolations(page: Page): Promise<string[]> {
  // Evaluated through the DevTools protocol: the console's CSP (script-src 'self') forbids an injected <script>.
  await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async () => {
    const w = window as unknown as { axe: { run: (ctx: Document, o: object) => Promise<{ violations: AxeViolation[] }> } };
    return (await w.axe.run(document, { resultTypes: ['violations'] })).violations;
  });
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

/** An owner API call with a bearer token, from the test (not the browser). */
export async function ownerApi<T = Record<string, unknown>>(base: string, token: string, method: string, path: string, body?: unknown): Promise<T> {
  const r = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  if (r.status >= 300) throw new Error(`${method} ${path} → ${r.status} ${text}`);
  return (text ? JSON.parse(text) : {}) as T;
}

export interface ChannelCommand {
  id: string;
  type: string;
  macs?: string[];
  tipsId?: string;
  reason?: string;
}

/** What a gateway reports per interface (apps/gateway/src/table/table.ts InterfaceRow). */
export function tableRow(mac: string, state: 'pending' | 'active' | 'blocked', o: { ip?: string; tipsId?: string | null; reason?: string | null } = {}) {
  const now = Date.now();
  return { mac, gatewayInterface: 'br0', tipsId: o.tipsId ?? null, state, type: 'ethernet', ip: o.ip ?? null, pxe: true, hostname: null, since: now, reason: o.reason ?? null, attempts: 0, updatedAt: now, nat: [] };
}

/**
 * A gateway over the real gateway API: enrolled with a one-time token and its own Ed25519 key,
 * every request signed with TIPS-GW-1 by apps/gateway's signer.
 */
export class ApiGateway {
  readonly commands: ChannelCommand[] = [];
  private ws: WebSocket | undefined;

  private constructor(
    readonly base: string,
    readonly id: string,
    private readonly key: KeyObject,
  ) {}

  static async enroll(base: string, ownerToken: string, name: string): Promise<ApiGateway> {
    const made = await ownerApi<{ enrollmentToken: string }>(base, ownerToken, 'POST', '/api/v1/gateways', { name });
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const r = await fetch(`${base}/api/gateway/v1/enroll`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ enrollmentToken: made.enrollmentToken, name, publicKey: publicKey.export({ format: 'pem', type: 'spki' }).toString() }),
    });
    if (r.status !== 201) throw new Error(`enroll: ${r.status} ${await r.text()}`);
    return new ApiGateway(base, ((await r.json()) as { gatewayId: string }).gatewayId, privateKey);
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const r = await fetch(`${this.base}${path}`, {
      method,
      headers: { ...signedHeaders(this.id, this.key, { method, pathWithQuery: path, body: text }), ...(text === undefined ? {} : { 'content-type': 'application/json' }) },
      body: text,
    });
    const out = await r.text();
    if (r.status >= 300) throw new Error(`${method} ${path} → ${r.status} ${out}`);
    return (out ? JSON.parse(out) : undefined) as T;
  }

  register(mac: string, ip: string): Promise<{ decision: string; tipsId?: string; reason?: string }> {
    return this.request('POST', '/api/gateway/v1/registrations', { mac, ip, gatewayInterface: 'br0', interfaceType: 'ethernet', pxe: true });
  }

  /** What the gateway asks when a metal PXE-boots on its LAN: that MAC's iPXE script (starts its Phase 1 job). */
  async bootScript(mac: string, base: string): Promise<string> {
    const path = `/api/gateway/v1/provisioning/boot-script?mac=${encodeURIComponent(mac)}&base=${encodeURIComponent(base)}`;
    const r = await fetch(`${this.base}${path}`, { headers: signedHeaders(this.id, this.key, { method: 'GET', pathWithQuery: path }) });
    const text = await r.text();
    if (r.status !== 200) throw new Error(`boot-script → ${r.status} ${text}`);
    return text;
  }

  putTable(rows: unknown[]): Promise<void> {
    return this.request('PUT', '/api/gateway/v1/table', { rows });
  }

  /** Opens the command channel; commands are acked as they come, like tips-gateway does. */
  async connect(): Promise<void> {
    const path = '/api/gateway/v1/channel';
    const ws = new WebSocket(`${this.base.replace(/^http/, 'ws')}${path}`, { headers: signedHeaders(this.id, this.key, { method: 'GET', pathWithQuery: path }) });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.on('message', (data) => {
      const c = JSON.parse(String(data)) as ChannelCommand;
      if (!c.id) return;
      this.commands.push(c);
      ws.send(JSON.stringify({ type: 'ack', ref: c.id }));
    });
    ws.send(JSON.stringify({ type: 'hello' }));
    this.ws = ws;
  }

  close(): void {
    this.ws?.close();
  }
}
