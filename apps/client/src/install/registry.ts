/** The install handlers this client knows, by the `handler` name a Glaze carries (contract C/D). */
import { archiveHandler } from './archive.ts';
import { scriptHandler } from './script.ts';
import { type SystemdOptions, systemdServiceHandler } from './systemd-service.ts';
import type { InstallHandler } from './types.ts';

export type HandlerName = InstallHandler['name'];

export interface HandlerOptions {
  systemd?: SystemdOptions;
  scriptTimeoutMs?: number;
}

export function installHandlers(options: HandlerOptions = {}): Map<string, InstallHandler> {
  const list: InstallHandler[] = [archiveHandler, systemdServiceHandler(options.systemd), scriptHandler({ timeoutMs: options.scriptTimeoutMs })];
  return new Map(list.map((h) => [h.name, h]));
}
