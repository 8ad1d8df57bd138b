// Enrollment (S6, D1): the EST service — secrets, CSR identity checks, mTLS identity, revocation and
// the refusal throttle. Killed by service.test.ts (in-memory ports, fast); the HTTP surface is tested in routes.test.ts (docs/TESTING.md › Mutation: enrollment).
import { area } from './base.mjs';

export default area('enrollment', ['apps/master/src/domains/enrollment/service.ts'], ['apps/master/src/domains/enrollment/service.test.ts']);
