// COSE_Sign1 / COSE_Mac0 (RFC 9052/9053) under SUIT authentication and the CWTs of @tips/trust (S1, S11).
// The hostile/fuzz suites reach cose.ts too but only re-check what these kill, at many times the cost.
import { area } from './base.mjs';

export default area('suit-cose', ['packages/suit/src/cose.ts'], ['packages/suit/src/cose.test.ts', 'packages/suit/test/cose.test.ts', 'packages/suit/test/vectors.test.ts', 'packages/suit/test/verify.test.ts']);
