import { CoapExchangeError, type CoapMessage, type CoapRequest, type CoapResponse, type CoapServer, codeString, type DatagramPeer, OPTION, optionUint } from '@tips/coap';
import type { TipsId } from '@tips/core';
import { DeviceMgmtError, type DeviceMgmtErrorCode } from './errors.ts';
import { OBJ_SECURITY, OBJ_SERVER, resourceType } from './objects.ts';
import { decodeSenmlCbor, decodeSenmlJson, encodeSenmlCbor } from './senml.ts';
import { BOOTSTRAP_DEFAULTS, type BootstrapValues, type DeviceChannel, type DeviceMgmtService, type DevicePrincipal } from './service.ts';
import { decodeTlvValue, recordsToTlv, tlvToRecords } from './tlv.ts';
import { type Lwm2mPath, Lwm2mFormatError, type ResourceRecord } from './values.ts';

/** LwM2M content formats (Core 1.1 §7.4). */
export const FORMAT = { TEXT: 0, LINK: 40, OPAQUE: 42, SENML_JSON: 110, SENML_CBOR: 112, TLV: 11542 } as const;
export type DataFormat = 'tlv' | 'senml-cbor';

/** CoAP answers for the domain's refusals (Core §6.2: 4.00 bad parameters, 4.03 not allowed, 4.04 unknown registration). */
const COAP_CODES: Partial<Record<DeviceMgmtErrorCode, string>> = {
  lwm2m_malformed: '4.00',
  lwm2m_endpoint_mismatch: '4.03',
  lwm2m_registration_not_found: '4.04',
};

/** The Security/Server values the bootstrap server writes (the bootstrapping profile). */
export type BootstrapProfile = BootstrapValues;

export interface Lwm2mCoapOptions {
  /** The metal of a DTLS session (constrained.principal); throws to refuse. */
  principal(peer: DatagramPeer): Promise<DevicePrincipal>;
  /** coaps://host:port of this endpoint, the base of Package URIs. */
  baseUri(): string;
  /** The bootstrapping profile of a metal; undefined = the master's defaults. */
  bootstrapProfile?(p: DevicePrincipal): Promise<BootstrapProfile>;
  /** The PSK key of a PSK identity (constrained.pskLookup), written to /0/0/5 so the device can reach the server it is sent to. */
  pskKey?(identity: string): Promise<Uint8Array | undefined>;
  /** Preferred format for reads and writes: SenML-CBOR for 1.1 devices, TLV for 1.0 (default). */
  formatFor?(lwm2mVersion: string): DataFormat;
  log?: (obj: object, msg: string) => void;
}

const refuse = (e: unknown): CoapResponse => {
  if (e instanceof DeviceMgmtError) {
    const code = COAP_CODES[e.code];
    if (code) return { code, contentFormat: FORMAT.TEXT, payload: new TextEncoder().encode(e.message) };
  }
  throw e;
};

const queryOf = (req: CoapRequest): Record<string, string> => Object.fromEntries(req.query);
const segs = (p: Lwm2mPath) => p.map(String);

/** Decodes a device's answer by its Content-Format into records under `base`. */
export function decodeRecords(res: CoapMessage, base: Lwm2mPath): ResourceRecord[] {
  const cf = optionUint(res, OPTION.CONTENT_FORMAT) ?? FORMAT.TEXT;
  switch (cf) {
    case FORMAT.TLV:
      return tlvToRecords(res.payload, base, resourceType);
    case FORMAT.SENML_CBOR:
      return decodeSenmlCbor(res.payload);
    case FORMAT.SENML_JSON:
      return decodeSenmlJson(res.payload);
    case FORMAT.TEXT:
    case FORMAT.OPAQUE: {
      if (base.length !== 3) throw new Lwm2mFormatError(`content format ${cf} carries a single resource, not /${base.join('/')}`);
      const type = resourceType(base[0]!, base[2]!);
      if (cf === FORMAT.OPAQUE) return [{ path: base, value: res.payload.slice() }];
      const text = new TextDecoder().decode(res.payload);
      if (type === 'integer' || type === 'unsigned' || type === 'time' || type === 'float') {
        const n = Number(text);
        if (text.trim() === '' || Number.isNaN(n)) throw new Lwm2mFormatError(`/${base.join('/')}: ${JSON.stringify(text)} is not a number`);
        return [{ path: base, value: n }];
      }
      if (type === 'boolean') return [{ path: base, value: text === '1' }];
      return [{ path: base, value: type === 'opaque' ? decodeTlvValue(res.payload, 'opaque') : text }];
    }
    default:
      throw new Lwm2mFormatError(`content format ${cf} is not one the server reads`);
  }
}

/**
 * LwM2M over the master's CoAP endpoint: the Registration interface (/rd), the Bootstrap interface
 * (/bs) and, as the service's DeviceChannel, the server-initiated operations (read, write, execute,
 * observe) sent to the session a device last registered or updated from.
 */
export function installLwm2mCoap(coap: CoapServer, devices: DeviceMgmtService, opts: Lwm2mCoapOptions): DeviceChannel {
  const log = opts.log ?? (() => {});
  /** The session each metal last spoke from, with its preferred format. */
  const sessions = new Map<string, { peer: DatagramPeer; format: DataFormat }>();
  const formatFor = opts.formatFor ?? ((v: string) => (v === '1.0' ? 'tlv' : 'senml-cbor'));
  const principal = async (req: CoapRequest): Promise<DevicePrincipal | undefined> => {
    try {
      return await opts.principal(req.peer);
    } catch (e) {
      log({ event: 'lwm2m_principal_refused', peer: req.peer.key, err: (e as Error).message }, 'LwM2M request from a session that is not an active metal refused');
      return undefined;
    }
  };
  const forbidden: CoapResponse = { code: '4.03', contentFormat: FORMAT.TEXT, payload: new TextEncoder().encode('not an active metal') };

  coap.route('POST', '/rd', async (req) => {
    const p = await principal(req);
    if (!p) return forbidden;
    try {
      const r = await devices.register(p, queryOf(req), req.payload);
      sessions.set(r.metalId, { peer: req.peer, format: formatFor(r.lwm2mVersion) });
      if (r.sendQueued) setImmediate(() => void devices.flushQueue(r.metalId as TipsId));
      return { code: '2.01', locationPath: ['rd', r.id] };
    } catch (e) {
      return refuse(e);
    }
  });
  coap.route('POST', '/rd/:id', async (req) => {
    const p = await principal(req);
    if (!p) return forbidden;
    try {
      const r = await devices.update(p, req.params.id!, queryOf(req), req.payload);
      sessions.set(r.metalId, { peer: req.peer, format: formatFor(r.lwm2mVersion) });
      // The device is awake now (in queue mode, or just out of it): what waited for it goes out after this answer.
      if (r.sendQueued) setImmediate(() => void devices.flushQueue(r.metalId as TipsId));
      return { code: '2.04' };
    } catch (e) {
      return refuse(e);
    }
  });
  coap.route('DELETE', '/rd/:id', async (req) => {
    const p = await principal(req);
    if (!p) return forbidden;
    try {
      await devices.deregister(p, req.params.id!);
      sessions.delete(p.metalId);
      return { code: '2.02' };
    } catch (e) {
      return refuse(e);
    }
  });

  // Bootstrap (Core §6.1): the client asks, the server answers 2.04 and then writes Security and
  // Server itself, and ends with Bootstrap-Finish (POST /bs to the client).
  coap.route('POST', '/bs', async (req) => {
    const p = await principal(req);
    if (!p) return forbidden;
    const ep = queryOf(req).ep;
    try {
      const metal = ep ? await devices.metalByEndpoint(p, ep) : undefined;
      if (!metal) throw new DeviceMgmtError('lwm2m_endpoint_mismatch', 'ep does not name the metal of this session', 'ep');
    } catch (e) {
      return refuse(e);
    }
    setImmediate(() => {
      bootstrap(req.peer, p).catch((e) => log({ event: 'lwm2m_bootstrap_failed', metal: p.metalId, err: (e as Error).message }, 'LwM2M bootstrap failed'));
    });
    return { code: '2.04' };
  });

  async function bootstrap(peer: DatagramPeer, p: DevicePrincipal): Promise<void> {
    const profile: BootstrapProfile = (await opts.bootstrapProfile?.(p)) ?? { serverUri: opts.baseUri(), ...BOOTSTRAP_DEFAULTS };
    const expect = async (res: Promise<CoapMessage>, what: string) => {
      const code = codeString((await res).code);
      if (!code.startsWith('2.')) throw new Error(`${what}: the client answered ${code}`);
    };
    // Bootstrap-Delete of what the factory left, then the two objects as TLV.
    await expect(coap.request(peer, { method: 'DELETE', path: [] }), 'Bootstrap-Delete /');
    const security: ResourceRecord[] = [
      { path: [0, 0, 0], value: profile.serverUri },
      { path: [0, 0, 1], value: false },
      { path: [0, 0, 10], value: profile.shortServerId },
    ];
    if (peer.identity.kind === 'psk') {
      const key = await opts.pskKey?.(peer.identity.identity);
      security.push({ path: [0, 0, 2], value: 0 }, { path: [0, 0, 3], value: new TextEncoder().encode(peer.identity.identity) });
      if (key) security.push({ path: [0, 0, 5], value: key });
    } else if (peer.identity.kind === 'certificate') {
      security.push({ path: [0, 0, 2], value: 2 });
    } else {
      security.push({ path: [0, 0, 2], value: 3 });
    }
    await expect(coap.request(peer, { method: 'PUT', path: segs([OBJ_SECURITY, 0]), contentFormat: FORMAT.TLV, payload: recordsToTlv(security, [OBJ_SECURITY, 0]) }), 'Bootstrap-Write /0/0');
    const server: ResourceRecord[] = [
      { path: [1, 0, 0], value: profile.shortServerId },
      { path: [1, 0, 1], value: profile.lifetime },
      { path: [1, 0, 2], value: profile.defaultMinPeriod },
      { path: [1, 0, 3], value: profile.defaultMaxPeriod },
      { path: [1, 0, 6], value: true },
      { path: [1, 0, 7], value: profile.binding },
    ];
    await expect(coap.request(peer, { method: 'PUT', path: segs([OBJ_SERVER, 0]), contentFormat: FORMAT.TLV, payload: recordsToTlv(server, [OBJ_SERVER, 0]) }), 'Bootstrap-Write /1/0');
    await expect(coap.request(peer, { method: 'POST', path: ['bs'] }), 'Bootstrap-Finish');
    devices.bootstrapped();
    log({ event: 'lwm2m_bootstrapped', metal: p.metalId, serverUri: profile.serverUri, lifetime: profile.lifetime, binding: profile.binding }, 'LwM2M bootstrap finished');
  }

  const sessionOf = (metalId: TipsId) => {
    const s = sessions.get(metalId);
    if (!s) throw new DeviceMgmtError('lwm2m_offline', 'no CoAP session reaches this device since the master started (it registers or updates again)', 'metal');
    return s;
  };
  const send = async (metalId: TipsId, what: string, run: (peer: DatagramPeer) => Promise<CoapMessage>, ok: string[]): Promise<CoapMessage> => {
    const s = sessionOf(metalId);
    let res: CoapMessage;
    try {
      res = await run(s.peer);
    } catch (e) {
      if (e instanceof CoapExchangeError) throw new DeviceMgmtError('lwm2m_device_error', `${what}: the device did not answer (${e.code})`, 'device');
      throw e;
    }
    const code = codeString(res.code);
    if (!ok.includes(code)) {
      const detail = new TextDecoder().decode(res.payload).slice(0, 200);
      throw new DeviceMgmtError('lwm2m_device_error', `${what}: the device answered ${code}${detail ? ` (${detail})` : ''}`, 'device');
    }
    return res;
  };
  const decode = (res: CoapMessage, path: Lwm2mPath) => {
    try {
      return decodeRecords(res, path);
    } catch (e) {
      if (e instanceof Lwm2mFormatError) throw new DeviceMgmtError('lwm2m_device_error', `the device's answer is malformed: ${e.message}`, 'device');
      throw e;
    }
  };
  const accept = (metalId: TipsId) => (sessionOf(metalId).format === 'tlv' ? FORMAT.TLV : FORMAT.SENML_CBOR);

  const channel: DeviceChannel = {
    baseUri: opts.baseUri,
    async read(metalId, path) {
      const res = await send(metalId, `Read /${path.join('/')}`, (peer) => coap.request(peer, { method: 'GET', path: segs(path), accept: accept(metalId) }), ['2.05']);
      return decode(res, path);
    },
    async write(metalId, path, records) {
      const tlv = sessionOf(metalId).format === 'tlv';
      const payload = tlv ? recordsToTlv(records, path) : encodeSenmlCbor(records);
      await send(metalId, `Write /${path.join('/')}`, (peer) => coap.request(peer, { method: path.length === 2 ? 'POST' : 'PUT', path: segs(path), contentFormat: tlv ? FORMAT.TLV : FORMAT.SENML_CBOR, payload }), ['2.04']);
    },
    async writeRaw(metalId, path, value) {
      const payload = typeof value === 'string' ? new TextEncoder().encode(value) : value;
      await send(metalId, `Write /${path.join('/')}`, (peer) => coap.request(peer, { method: 'PUT', path: segs(path), contentFormat: typeof value === 'string' ? FORMAT.TEXT : FORMAT.OPAQUE, payload }), ['2.04']);
    },
    async execute(metalId, path) {
      await send(metalId, `Execute /${path.join('/')}`, (peer) => coap.request(peer, { method: 'POST', path: segs(path) }), ['2.04']);
    },
    async observe(metalId, path, onRecords) {
      const onNotify = (res: CoapMessage) => {
        try {
          onRecords(decodeRecords(res, path));
        } catch (e) {
          log({ event: 'lwm2m_notification_malformed', metal: metalId, path: `/${path.join('/')}`, err: (e as Error).message }, 'LwM2M notification dropped');
        }
      };
      const res = await send(metalId, `Observe /${path.join('/')}`, (peer) => coap.request(peer, { method: 'GET', path: segs(path), accept: accept(metalId), observe: 0 }, onNotify), ['2.05']);
      onRecords(decode(res, path));
    },
  };
  devices.useChannel(channel);
  return channel;
}
