export { type Brand, InvalidValueError } from './brand.ts';
export {
  encodeBase32,
  type GatewayId,
  type GlazeId,
  ID_PREFIX,
  type IdKind,
  isId,
  newId,
  type OwnerId,
  parseId,
  type SpaceId,
  type TipsId,
} from './ids.ts';
export { type Mac, macFromBytes, macToBytes, parseMac } from './mac.ts';
export {
  INTERFACE_STATES,
  INTERFACE_TYPES,
  type InterfaceState,
  type InterfaceType,
  NAME_MAX,
  type Name,
  PHASES,
  type Phase,
  parseInterfaceType,
  parseName,
  parsePhase,
  parseSeqNo,
  parseSha256,
  type SeqNo,
  type Sha256,
} from './vocabulary.ts';
