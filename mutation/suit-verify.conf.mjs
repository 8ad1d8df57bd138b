// The SUIT verification stages: authenticate → anti-rollback → policy (S1, S3, S4, S12).
// hostile.test.ts (bit flips, fuzz) reaches verify.ts too but only re-checks what these kill, at
// many times the cost per mutant.
import { area } from './base.mjs';

export default area('suit-verify', ['packages/suit/src/verify.ts'], ['packages/suit/test/verify.test.ts', 'packages/suit/test/vectors.test.ts', 'packages/suit/test/builder.test.ts', 'packages/suit/test/payloads.test.ts']);
