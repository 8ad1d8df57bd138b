// Authorization tokens (S11): the master's token service and the CWT/JWT codec and checkToken a
// metal runs. Killed by tokens/service.test.ts (in-memory ports) and the @tips/trust token tests (docs/TESTING.md › Mutation: tokens).
import { area } from './base.mjs';

export default area(
  'tokens',
  ['apps/master/src/domains/tokens/service.ts', 'packages/trust/src/token.ts'],
  ['apps/master/src/domains/tokens/service.test.ts', 'packages/trust/src/token*.test.ts'],
);
