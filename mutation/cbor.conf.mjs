// The strict CBOR codec every SUIT envelope, COSE structure and CWT goes through (S1).
// hostile.test.ts (bit flips, fuzz) reaches cbor.ts too but only re-checks what these kill, at
// many times the cost per mutant.
import { area } from './base.mjs';

export default area('cbor', ['packages/suit/src/cbor.ts'], ['packages/suit/src/cbor.test.ts', 'packages/suit/test/cbor-strict.test.ts', 'packages/suit/test/vectors.test.ts']);
