import { Lwm2mFormatError, parsePath } from './values.ts';

/** CoRE Link Format (RFC 6690 §2), the body of an LwM2M Register/Update: `</1/0>,</3/0>;ver=1.1,…`. */
export interface Link {
  uri: string;
  params: Record<string, string | true>;
}

const MAX_LINKS = 4096;

/** Parses a link-format document. Quoted values may hold `,` and `;`; a parameter without `=` is `true`. */
export function parseLinkFormat(text: string): Link[] {
  const links: Link[] = [];
  let i = 0;
  const skipWs = () => {
    while (i < text.length && /[ \t\r\n]/.test(text[i]!)) i++;
  };
  skipWs();
  if (i === text.length) return links;
  for (;;) {
    skipWs();
    if (text[i] !== '<') throw new Lwm2mFormatError(`link-format: expected "<" at ${i}, got ${JSON.stringify(text[i] ?? 'end')}`);
    const end = text.indexOf('>', i + 1);
    if (end < 0) throw new Lwm2mFormatError(`link-format: "<" at ${i} is never closed`);
    const uri = text.slice(i + 1, end);
    i = end + 1;
    const params: Record<string, string | true> = {};
    while (text[i] === ';') {
      i++;
      const m = /^[A-Za-z0-9!#$&+\-.^_`|~*]+/.exec(text.slice(i));
      if (!m) throw new Lwm2mFormatError(`link-format: expected a parameter name at ${i}`);
      const name = m[0];
      i += name.length;
      if (text[i] !== '=') {
        params[name] = true;
        continue;
      }
      i++;
      if (text[i] === '"') {
        let v = '';
        i++;
        for (;;) {
          if (i >= text.length) throw new Lwm2mFormatError(`link-format: quoted value of ${name} is never closed`);
          const c = text[i++]!;
          if (c === '"') break;
          if (c === '\\' && i < text.length) v += text[i++]!;
          else v += c;
        }
        params[name] = v;
      } else {
        const m2 = /^[^,;]*/.exec(text.slice(i))!;
        params[name] = m2[0];
        i += m2[0].length;
      }
    }
    links.push({ uri, params });
    if (links.length > MAX_LINKS) throw new Lwm2mFormatError(`link-format: more than ${MAX_LINKS} links`);
    skipWs();
    if (i === text.length) return links;
    if (text[i] !== ',') throw new Lwm2mFormatError(`link-format: expected "," at ${i}, got ${JSON.stringify(text[i])}`);
    i++;
  }
}

/** One object the device declared it supports, with its instances and version (Core §6.2.1 Register). */
export interface DeclaredObject {
  objectId: number;
  version?: string;
  instances: number[];
}

/**
 * Reads the objects and instances of a Register/Update body. A root link `</>;rt="oma.lwm2m"`
 * (or another alternate root path) is recognised; links outside it are refused.
 */
export function declaredObjects(text: string): { rootPath: string; objects: DeclaredObject[] } {
  const links = parseLinkFormat(text);
  let rootPath = '/';
  const root = links.find((l) => l.params.rt === 'oma.lwm2m');
  if (root) rootPath = root.uri.endsWith('/') ? root.uri : `${root.uri}/`;
  const byId = new Map<number, DeclaredObject>();
  for (const l of links) {
    if (l === root) continue;
    if (!l.uri.startsWith(rootPath)) throw new Lwm2mFormatError(`link ${JSON.stringify(l.uri)} lies outside the root path ${rootPath}`);
    const path = parsePath(l.uri.slice(rootPath.length - 1));
    if (path.length < 1 || path.length > 2) throw new Lwm2mFormatError(`link ${JSON.stringify(l.uri)} names neither an object nor an object instance`);
    const o = byId.get(path[0]!) ?? { objectId: path[0]!, instances: [] };
    if (typeof l.params.ver === 'string') o.version = l.params.ver;
    if (path.length === 2 && !o.instances.includes(path[1]!)) o.instances.push(path[1]!);
    byId.set(o.objectId, o);
  }
  return { rootPath, objects: [...byId.values()].sort((a, b) => a.objectId - b.objectId) };
}

/** Renders objects back as a link-format body (what the simulator and tests send). */
export function formatObjects(objects: readonly DeclaredObject[]): string {
  return objects
    .flatMap((o) => [...(o.version || o.instances.length === 0 ? [`</${o.objectId}>${o.version ? `;ver=${o.version}` : ''}`] : []), ...o.instances.map((i) => `</${o.objectId}/${i}>`)])
    .join(',');
}
