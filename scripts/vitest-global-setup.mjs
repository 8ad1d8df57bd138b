// Gives every test run a real PostgreSQL: the one named by TIPS_TEST_PG_URL, or a throw-away
// cluster started here and removed afterwards (so `npx vitest` alone works too).
import { startThrowawayPostgres } from './postgres.mjs';

let pg;
export default function setup({ provide }) {
  let url = process.env.TIPS_TEST_PG_URL;
  if (!url) {
    pg = startThrowawayPostgres();
    url = pg.url;
  }
  provide('pgUrl', url);
  return () => pg?.stop();
}
