// The master's HTTP edge (issue 10): the 415 media-type guard, the query-string and NUL/lone-surrogate
// refusals, framework and HTTP-parser errors in the one error shape. Killed by http/edge.unit.test.ts
// (a bare Fastify app with the edge and the error handler); http/edge.test.ts drives the same guards
// through every route of the master on both stores, too slow to run per mutant (docs/TESTING.md › Mutation: edge).
import { area } from './base.mjs';

export default area('edge', ['apps/master/src/http/edge.ts'], ['apps/master/src/http/edge.unit.test.ts']);
