// List pagination (issue 10): cursors (encode, integrity check, list binding), the limit rules and
// the keyset window. Killed by http/pagination.test.ts and db/keyset.test.ts (docs/TESTING.md › Mutation: pagination).
import { area } from './base.mjs';

export default area(
  'pagination',
  ['apps/master/src/http/pagination.ts', 'apps/master/src/db/keyset.ts'],
  ['apps/master/src/http/pagination.test.ts', 'apps/master/src/db/keyset.test.ts'],
);
