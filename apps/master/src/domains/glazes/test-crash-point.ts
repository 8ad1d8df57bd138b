/**
 * Test-only crash points, for the e2e suite that proves the repository survives `kill -9` at a
 * chosen instant (e2e/glaze-durability.test.ts). Honoured only when TIPS_TEST_CRASH_AT names the
 * point explicitly — it is never set in production, and unset it costs one string comparison. The
 * process announces the point on stderr and then stops there (the request never completes), so
 * the test can inspect the state and SIGKILL the process exactly at that point.
 */
export type CrashPoint = 'glaze-after-rename';

export async function testCrashPoint(point: CrashPoint, detail: string): Promise<void> {
  if (process.env.TIPS_TEST_CRASH_AT !== point) return;
  process.stderr.write(`TIPS_TEST_CRASH_POINT ${point} ${detail}\n`);
  await new Promise<never>(() => {});
}
