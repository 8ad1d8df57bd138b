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

declare module '../../db/schema.ts' {
  interface Database {
    lwm2m_registrations: Lwm2mRegistrationsTable;
    lwm2m_firmware_jobs: Lwm2mFirmwareJobsTable;
    lwm2m_observed: Lwm2mObservedTable;
  }
}
