/**
 * A stand-in for the agent's start-up and install path, run as its own process by e2e/ab-power.test.ts
 * so that it can be killed with SIGKILL at a chosen phase:
 *   node --import tsx e2e/ab-runner.ts install <stateDir> <payload> <glaze.json>
 *   node --import tsx e2e/ab-runner.ts recover <stateDir>
 *   node --import tsx e2e/ab-runner.ts rollback <stateDir>
 * TIPS_AB_PAUSE: `writing` (after the first MiB reached the slot), `switching` (the boot record selects the
 * trial, the bootloader not yet), `checking` (a boot of the trial was counted, the check not run).
 * At the pause it prints `PAUSED <phase>` and waits to be killed. The last stdout line is the result as JSON.
 */
import pino from 'pino';
import { abStatus, createRootfsAbHandler, lastOutcome } from '../apps/client/src/install/rootfs-ab.ts';

const [mode, stateDir, payloadPath, glazeFile] = process.argv.slice(2);
const pauseAt = process.env.TIPS_AB_PAUSE;
const log = pino({ level: 'info' }, pino.destination(2));

const handler = createRootfsAbHandler({
  onProgress(p) {
    const hit =
      (pauseAt === 'writing' && p.phase === 'writing' && p.bytes < p.total) ||
      (pauseAt === 'switching' && p.phase === 'switching' && p.step === 'record') ||
      (pauseAt === 'checking' && p.phase === 'checking');
    if (!hit) return;
    process.stdout.write(`PAUSED ${pauseAt}\n`);
    // A pending promise alone would let Node exit: keep the process alive until the test kills it.
    setInterval(() => {}, 60_000);
    return new Promise<void>(() => {});
  },
});

async function main() {
  if (mode === 'install') {
    const { readFileSync } = await import('node:fs');
    const glaze = JSON.parse(readFileSync(glazeFile!, 'utf8'));
    try {
      await handler.install({ payloadPath: payloadPath!, glaze, stateDir: stateDir!, log });
      return { install: 'committed' };
    } catch (e) {
      return { install: 'rejected', code: (e as { abCode?: string }).abCode, message: (e as Error).message };
    }
  }
  if (mode === 'recover') return { recover: await handler.recover(stateDir!, log) };
  if (mode === 'rollback') {
    try {
      return { rollback: await handler.rollback(stateDir!, log) };
    } catch (e) {
      return { rollback: 'refused', code: (e as { abCode?: string }).abCode };
    }
  }
  throw new Error(`unknown mode ${mode}`);
}

main().then(
  (r) => {
    process.stdout.write(`${JSON.stringify({ ...r, outcome: lastOutcome(stateDir!) ?? null, record: abStatus(stateDir!) })}\n`);
  },
  (e) => {
    process.stderr.write(`${(e as Error).stack}\n`);
    process.exit(1);
  },
);
