/**
 * The agent's entry to T17: a work item whose Space links two or more of this metal's interfaces
 * (that the OS has addresses on) is downloaded over all of them; otherwise the one-connection
 * download of the metal API does it.
 */
import { statSync } from 'node:fs';
import type { Logger } from 'pino';
import type { MetalApi, WorkItem } from '../master/metal-api.ts';
import { type Link, resolveLinks } from './links.ts';
import { downloadMultipath, type MultipathResult } from './multipath.ts';

export { type Link, type LinkSpec, resolveLinks } from './links.ts';
export { addRange, downloadMultipath, missingChunks, type MultipathOptions, type MultipathResult } from './multipath.ts';

/** The links a multi-homed download of `item` would use (fewer than two: none). */
export function linksFor(item: WorkItem): Link[] {
  const links = resolveLinks(item.interfaces);
  return links.length >= 2 ? links : [];
}

export async function downloadOverLinks(api: MetalApi, item: WorkItem, file: string, links: Link[], log: Logger): Promise<MultipathResult> {
  const g = item.glaze;
  try {
    if (statSync(file).size === g.size) return { bytes: g.size, perLink: {}, resumed: g.size, deadLinks: [], linkStats: {} };
  } catch {
    // not there yet
  }
  log.info({ event: 'download_multipath', glaze: g.id, links: links.map((l) => `${l.iface}=${l.localAddress}`) }, `downloading ${g.name} over ${links.length} links`);
  const t0 = Date.now();
  const r = await downloadMultipath({
    url: api.url(item.blobPath),
    file,
    size: g.size,
    sha256: g.sha256,
    links,
    tls: api.tls(),
    authorization: () => api.authorization(),
    dropToken: () => api.dropToken(),
    log,
    onProgress: (done, perLink) =>
      log.info({ event: 'download_progress', glaze: g.id, bytes: done, size: g.size, percent: Math.floor((done * 100) / Math.max(g.size, 1)), perLink }, `${g.name}: ${done}/${g.size} bytes`),
  });
  log.info({ event: 'download_done', glaze: g.id, bytes: r.bytes, resumed: r.resumed, perLink: r.perLink, linkStats: r.linkStats, deadLinks: r.deadLinks, ms: Date.now() - t0 }, `${g.name}: ${r.bytes} bytes over ${links.length} links`);
  return r;
}
