// COSE_Sign1 / COSE_Mac0 (RFC 9052/9053) under SUIT authentication and the CWTs of @tips/trust (S1, S11).
import { area } from './base.mjs';

export default area('suit-cose', ['packages/suit/src/cose.ts'], ['packages/suit/src/cose.test.ts', 'packages/suit/test/**/*.test.ts']);
