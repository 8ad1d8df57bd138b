// Before any test: compiles the bins (scripts/build.mjs), so e2e tests that start `tips`,
// `tips-master` or `tips-gateway` run the JavaScript built from the sources under test, never a
// stale dist/. Then gives every test run a real PostgreSQL: the one named by TIPS_TEST_PG_URL, or a
// throw-away cluster started here and removed afterwards (so `npx vitest` alone works too).
import { buildBins } from './build.mjs';
import { startThrowawayPostgres } from './postgres.mjs';

let pg;
export default async function setup({ provide }) {
  await buildBins({ quiet: true });
  let url = process.env.TIPS_TEST_PG_URL;
  if (!url) {
    pg = startThrowawayPostgres();
    url = pg.url;
  }
  provide('pgUrl', url);
  return () => pg?.stop();
}
