/** Tables of the devicemgmt domain (0015_devicemgmt), joined to `Database` by module augmentation. */
export interface Lwm2mRegistrationsTable {
  /** The registration ID the device uses in /rd/{id}. */
  id: string;
  metal_id: string;
  owner_id: string;
  endpoint: string;
  lwm2m_version: string;
  lifetime: number;
  /** 'U' (1.1 binding; queue mode is its own column). */
  binding: string;
  queue_mode: number;
  /** JSON: DeclaredObject[] from the link-format body. */
  objects: string;
  registered_at: string;
  last_update: string;
  /** Epoch milliseconds after which the device is offline (last update + lifetime + grace). */
  expires_at: number;
  online: number;
}

export interface Lwm2mFirmwareJobsTable {
  id: string;
  owner_id: string;
  metal_id: string;
  glaze_id: string;
  package_uri: string;
  /** FirmwareJobStatus. */
  status: string;
  /** Last reported /5/0/3 and /5/0/5, null until the device reports. */
  state: number | null;
  result: number | null;
  message: string | null;
  created_at: string;
  updated_at: string;
}

export interface Lwm2mObservedTable {
  metal_id: string;
  /** "/3/0/9" or "/3/0/6/1". */
  path: string;
  /** JSON of valueToJson(value). */
  value: string;
  observed_at: string;
}

/** 0017_lwm2m: an operation queued for a queue-mode device (service.ts QueuedOperation). */
export interface Lwm2mQueueTable {
  /** lwq_… */
  id: string;
  metal_id: string;
  owner_id: string;
  /** read | firmware */
  kind: string;
  /** read: the path; firmware: the Glaze ID. */
  target: string;
  /** queued → sent (claimed by one replica) → done | failed */
  status: string;
  /** JSON of the read's answer ({ path, value }[] as valueToJson writes it). */
  records: string | null;
  job_id: string | null;
  error_code: string | null;
  error_message: string | null;
  /** Strictly increasing per metal (the delivery order). */
  created_at: string;
  updated_at: string;
}

declare module '../../db/schema.ts' {
  interface Database {
    lwm2m_registrations: Lwm2mRegistrationsTable;
    lwm2m_firmware_jobs: Lwm2mFirmwareJobsTable;
    lwm2m_observed: Lwm2mObservedTable;
    lwm2m_queue: Lwm2mQueueTable;
  }
}
