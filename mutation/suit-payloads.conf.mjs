// Integrated payloads of a SUIT envelope checked against the digest and size the signed manifest
// gives their component (T6 in docs/THREAT-MODEL.md; `tips suit verify` exit 8).
import { area } from './base.mjs';

export default area('suit-payloads', ['packages/suit/src/payloads.ts'], ['packages/suit/test/payloads.test.ts']);
