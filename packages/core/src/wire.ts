// The owner API's answers as clients read them (the CLI and the web console share these; the
// master's TypeBox schemas in apps/master are the source, checked by its OpenAPI test). Types only:
// nothing here runs.

/** A keyset page of a list route. */
export interface PageOut<T> {
  items: T[];
  nextCursor: string | null;
}

/** One registration decision of a gateway (T9: `GET /discovery/failures`, `/discovery/registrations`). */
export interface RegistrationOut {
  at: string;
  gatewayId: string;
  gatewayName?: string;
  mac: string;
  ip: string;
  interfaceType: string;
  gatewayInterface: string;
  pxe: boolean;
  hostname?: string;
  decision: string;
  reason?: string;
  tipsId?: string;
}

/** One (MAC, gateway) row of `GET /interface-states` (T11). */
export interface InterfaceStateOut {
  mac: string;
  gatewayId: string;
  gatewayName: string;
  gatewayInterface: string | null;
  state: string;
  ip: string | null;
  tipsId: string | null;
  reason: string | null;
  lastSeenAt: string | null;
  reportedAt: string;
}

/** A Phase 1 job (T13: `GET /provisioning/jobs[/:id]`, `phase1` of a metal). */
export interface JobOut {
  id: string;
  metalId: string;
  interfaceName: string;
  mac: string;
  spaceId: string;
  engine: string;
  state: string;
  reason: string | null;
  detail: string | null;
  glaze: { id: string; name: string; size: number; sha256: string; sequence: number } | null;
  claimed: boolean;
  transitions: { state: string; at: string; reason: string | null }[];
  createdAt: string;
  updatedAt: string;
  report?: { receivedAt: string; cose: string; payload: { result: string; reason: string | null; detail: string | null; bytesWritten: number; disk: string; glazeSha256: string; at: string } } | null;
}

/** A signed install report of a metal (Phases 2–3). */
export interface ReportOut {
  id: string;
  spaceId: string;
  glazeId: string;
  result: string;
  reason: string | null;
  sequence: number;
  at: string;
  /** A rollback: what the metal went back to. */
  rolledBackTo?: { glazeId: string | null; glazeName: string | null; version: string | null };
}

/** A metal event: tamper report, refused authentication, rollback request, rollback done. */
export interface EventOut {
  id: string;
  kind: string;
  code: string;
  detail: Record<string, unknown>;
  createdAt: string;
}

/** A tamper report in the fleet-wide list (`GET /tamper-events`, T16). */
export interface TamperEventOut extends EventOut {
  metalId: string;
  metalName: string;
  blocked: boolean;
}

/** The `updates` part of `GET /metals/:ref` (installed Glazes per Space, history, events). */
export interface MetalUpdatesOut {
  profile: { vendorId: string | null; classId: string | null; protocols: string[]; updatedAt: string } | null;
  installed: { spaceId: string; glazeId: string; glazeName: string | null; version: string | null; sequence: number | null; installedAt: string | null }[];
  lastReport: ReportOut | null;
  history: ReportOut[];
  events: EventOut[];
}

/** Who signed a Glaze's manifest (`GET /manifests?glazes=`, T12). */
export interface ManifestSignerOut {
  glazeId: string;
  sequenceNumber: string;
  createdAt: string;
  signedBy: { id: string; name: string; alg: string; kid: string; serverHeld: boolean; revokedAt: string | null };
}

/** An LwM2M device's registration and firmware state (GET /api/v1/metals/{ref}/lwm2m; `lwm2m` in `tips metal show`). */
export interface Lwm2mOut {
  registrationId: string;
  endpoint: string;
  lwm2mVersion: string;
  lifetime: number;
  binding: string;
  queueMode: boolean;
  objects: { objectId: number; version?: string; instances: number[] }[];
  registeredAt: string;
  lastUpdate: string;
  online: boolean;
  firmware: { jobId: string; glazeId: string; status: string; state: string | null; result: string | null; packageUri: string; updatedAt: string } | null;
}

/** An operation held for a queue-mode LwM2M device (GET /api/v1/metals/{ref}/lwm2m/queue, `tips lwm2m queue`). */
export interface Lwm2mQueuedOut {
  id: string;
  kind: 'read' | 'firmware';
  /** read: the path; firmware: the Glaze ID. */
  target: string;
  status: 'queued' | 'sent' | 'done' | 'failed';
  /** read: the records the device answered, as valueToJson renders them. */
  records?: { path: string; value: unknown }[];
  /** firmware: the job the update started. */
  jobId?: string;
  error?: { code: string; message: string };
  createdAt: string;
  updatedAt: string;
}
