import { area } from './base.mjs';

// TIPS-D's decision rule (T6), release on a fix (T10), blocks (T16) and registration validation:
// killed by the fast rule tests over fakes and the two-replica tests (routes.test.ts crosses HTTP
// and signatures for the same rules, at ~1 s a test: too slow to run per mutant).
export default area(
  'discovery',
  ['apps/master/src/domains/discovery/service.ts'],
  ['apps/master/src/domains/discovery/rules.test.ts', 'apps/master/src/domains/discovery/service.test.ts'],
);
