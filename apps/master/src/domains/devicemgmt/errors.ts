import { DomainError } from '../../http/errors.ts';

export type DeviceMgmtErrorCode =
  | 'lwm2m_malformed'
  | 'lwm2m_endpoint_mismatch'
  | 'lwm2m_registration_not_found'
  | 'lwm2m_not_registered'
  | 'lwm2m_offline'
  | 'lwm2m_resource_not_found'
  /** No such queued operation of this metal (or it is past the finished ones kept). */
  | 'lwm2m_operation_not_found'
  | 'lwm2m_device_error'
  | 'lwm2m_glaze_not_for_metal'
  | 'lwm2m_glaze_unsigned'
  | 'lwm2m_firmware_busy'
  /** Queue mode: the device already has MAX_QUEUED operations waiting for its next update. */
  | 'lwm2m_queue_full'
  | 'lwm2m_no_coap';

/** The devicemgmt domain's one error type; the HTTP table is in routes.ts, the CoAP codes in coap.ts. */
export class DeviceMgmtError extends DomainError<DeviceMgmtErrorCode> {
  constructor(code: DeviceMgmtErrorCode, message: string, field?: string) {
    super('devicemgmt', code, message, field);
  }
}
