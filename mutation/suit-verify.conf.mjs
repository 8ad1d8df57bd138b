// The SUIT verification stages: authenticate → anti-rollback → policy (S1, S3, S4, S12).
import { area } from './base.mjs';

export default area('suit-verify', ['packages/suit/src/verify.ts'], ['packages/suit/test/**/*.test.ts']);
