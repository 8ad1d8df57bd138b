import { area } from './base.mjs';

// TIPS-D's decision rule (T6), release on a fix (T10) and blocks (T16): killed by the discovery unit tests.
export default area('discovery', ['apps/master/src/domains/discovery/service.ts'], ['apps/master/src/domains/discovery/*.test.ts']);
