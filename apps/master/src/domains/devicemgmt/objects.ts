import type { ResourceType } from './values.ts';

/**
 * The object model the server knows (OMA LwM2M Core 1.1 Appendix E): 0 Security, 1 Server,
 * 3 Device, 5 Firmware Update. Types decide how TLV bytes are read; operations what the server may
 * ask. Resources not listed are kept as opaque bytes.
 */
export type Operation = 'R' | 'W' | 'RW' | 'E' | '';

export interface ResourceDef {
  id: number;
  name: string;
  type: ResourceType;
  operations: Operation;
  multiple?: boolean;
}

export interface ObjectDef {
  id: number;
  name: string;
  multipleInstances: boolean;
  resources: ReadonlyMap<number, ResourceDef>;
}

const def = (id: number, name: string, multipleInstances: boolean, resources: ResourceDef[]): ObjectDef => ({ id, name, multipleInstances, resources: new Map(resources.map((r) => [r.id, r])) });

export const OBJ_SECURITY = 0;
export const OBJ_SERVER = 1;
export const OBJ_DEVICE = 3;
export const OBJ_FIRMWARE = 5;

/** Security (0): bootstrap-only; its keys are never readable by the device-management server. */
export const SecurityObject = def(OBJ_SECURITY, 'LwM2M Security', true, [
  { id: 0, name: 'LwM2M Server URI', type: 'string', operations: '' },
  { id: 1, name: 'Bootstrap-Server', type: 'boolean', operations: '' },
  { id: 2, name: 'Security Mode', type: 'integer', operations: '' },
  { id: 3, name: 'Public Key or Identity', type: 'opaque', operations: '' },
  { id: 4, name: 'Server Public Key', type: 'opaque', operations: '' },
  { id: 5, name: 'Secret Key', type: 'opaque', operations: '' },
  { id: 10, name: 'Short Server ID', type: 'integer', operations: '' },
  { id: 11, name: 'Client Hold Off Time', type: 'integer', operations: '' },
  { id: 12, name: 'Bootstrap-Server Account Timeout', type: 'integer', operations: '' },
]);

export const ServerObject = def(OBJ_SERVER, 'LwM2M Server', true, [
  { id: 0, name: 'Short Server ID', type: 'integer', operations: 'R' },
  { id: 1, name: 'Lifetime', type: 'integer', operations: 'RW' },
  { id: 2, name: 'Default Minimum Period', type: 'integer', operations: 'RW' },
  { id: 3, name: 'Default Maximum Period', type: 'integer', operations: 'RW' },
  { id: 4, name: 'Disable', type: 'none', operations: 'E' },
  { id: 5, name: 'Disable Timeout', type: 'integer', operations: 'RW' },
  { id: 6, name: 'Notification Storing When Disabled or Offline', type: 'boolean', operations: 'RW' },
  { id: 7, name: 'Binding', type: 'string', operations: 'RW' },
  { id: 8, name: 'Registration Update Trigger', type: 'none', operations: 'E' },
]);

export const DeviceObject = def(OBJ_DEVICE, 'Device', false, [
  { id: 0, name: 'Manufacturer', type: 'string', operations: 'R' },
  { id: 1, name: 'Model Number', type: 'string', operations: 'R' },
  { id: 2, name: 'Serial Number', type: 'string', operations: 'R' },
  { id: 3, name: 'Firmware Version', type: 'string', operations: 'R' },
  { id: 4, name: 'Reboot', type: 'none', operations: 'E' },
  { id: 5, name: 'Factory Reset', type: 'none', operations: 'E' },
  { id: 6, name: 'Available Power Sources', type: 'integer', operations: 'R', multiple: true },
  { id: 7, name: 'Power Source Voltage', type: 'integer', operations: 'R', multiple: true },
  { id: 9, name: 'Battery Level', type: 'integer', operations: 'R' },
  { id: 11, name: 'Error Code', type: 'integer', operations: 'R', multiple: true },
  { id: 13, name: 'Current Time', type: 'time', operations: 'RW' },
  { id: 14, name: 'UTC Offset', type: 'string', operations: 'RW' },
  { id: 15, name: 'Timezone', type: 'string', operations: 'RW' },
  { id: 16, name: 'Supported Binding and Modes', type: 'string', operations: 'R' },
  { id: 17, name: 'Device Type', type: 'string', operations: 'R' },
  { id: 18, name: 'Hardware Version', type: 'string', operations: 'R' },
  { id: 19, name: 'Software Version', type: 'string', operations: 'R' },
]);

export const FirmwareObject = def(OBJ_FIRMWARE, 'Firmware Update', false, [
  { id: 0, name: 'Package', type: 'opaque', operations: 'W' },
  { id: 1, name: 'Package URI', type: 'string', operations: 'RW' },
  { id: 2, name: 'Update', type: 'none', operations: 'E' },
  { id: 3, name: 'State', type: 'integer', operations: 'R' },
  { id: 5, name: 'Update Result', type: 'integer', operations: 'R' },
  { id: 6, name: 'PkgName', type: 'string', operations: 'R' },
  { id: 7, name: 'PkgVersion', type: 'string', operations: 'R' },
  { id: 8, name: 'Firmware Update Protocol Support', type: 'integer', operations: 'R', multiple: true },
  { id: 9, name: 'Firmware Update Delivery Method', type: 'integer', operations: 'R' },
]);

export const OBJECTS: ReadonlyMap<number, ObjectDef> = new Map([SecurityObject, ServerObject, DeviceObject, FirmwareObject].map((o) => [o.id, o]));

/** The type a resource's bytes are read as: the model's, else opaque. */
export function resourceType(objectId: number, resourceId: number): ResourceType {
  return OBJECTS.get(objectId)?.resources.get(resourceId)?.type ?? 'opaque';
}

export function resourceDef(objectId: number, resourceId: number): ResourceDef | undefined {
  return OBJECTS.get(objectId)?.resources.get(resourceId);
}
