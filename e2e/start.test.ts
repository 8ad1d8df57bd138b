import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listNamespaces } from '@tips/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from './helpers.ts';

/**
 * D6: the README's `npm start` gives a working fleet in minutes — a master, a real gateway in a
 * network namespace, and demo metals whose udhcpc gets leases; the undeclared one is Blocked.
 */
let dir: string;
let proc: ChildProcess;
let out = '';

async function waitFor(re: RegExp, ms: number): Promise<RegExpMatchArray> {
  const end = Date.now() + ms;
  for (;;) {
    const m = re.exec(out);
    if (m) return m;
    if (proc.exitCode !== null) throw new Error(`npm start exited ${proc.exitCode}:\n${out}`);
    if (Date.now() > end) throw new Error(`no ${re} within ${ms} ms:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tips-e2e-start-'));
  proc = spawn('npm', ['start', '--', '--port', '0'], { cwd: ROOT, env: { ...process.env, TIPS_DEMO_DATA: dir }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  proc.stdout!.on('data', (d) => {
    out += d;
  });
  proc.stderr!.on('data', (d) => {
    out += d;
  });
});
afterAll(async () => {
  if (proc.exitCode === null && proc.signalCode === null) {
    process.kill(-proc.pid!, 'SIGTERM');
    await once(proc, 'exit');
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('D6 T5 T6 npm start runs the master, a gateway and a demo fleet', () => {
  it('prints the URL and the admin token, then shows two Active metals and one Blocked intruder', async () => {
    await waitFor(/listening on http:\/\/127\.0\.0\.1:\d+/, 60_000);
    await waitFor(/Admin API token \(shown once, keep it safe\):\n\s+tips_/, 10_000);
    const ns = (await waitFor(/gateway namespace (tb-demo-\S+),/, 60_000))[1]!;
    expect(await listNamespaces()).toContain(ns);
    await waitFor(/02:de:00:00:00:66.*unknown_mac/, 60_000);
    const rows = out.split('\n').filter((l) => l.includes('02:de:00:00:00:'));
    expect(rows.filter((l) => / active /.test(l))).toHaveLength(2);
    expect(rows.filter((l) => / blocked /.test(l))).toHaveLength(1);
  });

  it('removes every namespace it made when stopped', async () => {
    const ns = /gateway namespace (tb-demo-[0-9a-f-]+?)-gw,/.exec(out)![1]!;
    // As Ctrl-C in a terminal does: the signal goes to the whole process group.
    process.kill(-proc.pid!, 'SIGTERM');
    await once(proc, 'exit');
    // npm may return at once; the clean-up runs on in the script it started.
    let left = (await listNamespaces()).filter((n) => n.startsWith(ns));
    for (let i = 0; i < 100 && left.length > 0; i++) {
      await new Promise((r) => setTimeout(r, 200));
      left = (await listNamespaces()).filter((n) => n.startsWith(ns));
    }
    expect(left).toEqual([]);
  });
});
