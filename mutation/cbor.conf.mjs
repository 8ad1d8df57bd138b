// The strict CBOR codec every SUIT envelope, COSE structure and CWT goes through (S1).
import { area } from './base.mjs';

export default area('cbor', ['packages/suit/src/cbor.ts'], ['packages/suit/src/cbor.test.ts', 'packages/suit/test/**/*.test.ts']);
