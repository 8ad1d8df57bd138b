// A software TPM 2.0 for tests: Debian's swtpm on two consecutive loopback ports (server and
// control), its state in `dir`, ready once tpm2-tools can read its fixed properties.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';

export interface Swtpm {
  /** The TCTI string tpm2-tools and the client take (`swtpm:host=127.0.0.1,port=N`). */
  tcti: string;
  proc: ChildProcess;
  stop(): Promise<void>;
}

/** Two consecutive free TCP ports on loopback (swtpm's server and control ports). */
async function freePortPair(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const s = createServer().listen(0, '127.0.0.1');
    await once(s, 'listening');
    const port = (s.address() as { port: number }).port;
    s.close();
    const next = createServer().listen(port + 1, '127.0.0.1');
    const ok = await new Promise<boolean>((resolve) => {
      next.once('listening', () => resolve(true));
      next.once('error', () => resolve(false));
    });
    next.close();
    if (ok && port < 65535) return port;
  }
  throw new Error('no free port pair');
}

export async function startSwtpm(dir: string): Promise<Swtpm> {
  const port = await freePortPair();
  const tcti = `swtpm:host=127.0.0.1,port=${port}`;
  const proc = spawn('swtpm', ['socket', '--tpm2', '--tpmstate', `dir=${dir}`, '--server', `type=tcp,port=${port},bindaddr=127.0.0.1`, '--ctrl', `type=tcp,port=${port + 1},bindaddr=127.0.0.1`, '--flags', 'startup-clear'], {
    stdio: 'ignore',
  });
  const env = { ...process.env, TPM2TOOLS_TCTI: tcti };
  for (let i = 0; i < 100 && spawnSync('tpm2_getcap', ['properties-fixed'], { env, encoding: 'utf8' }).status !== 0; i++) await new Promise((r) => setTimeout(r, 100));
  return {
    tcti,
    proc,
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill();
      await once(proc, 'exit');
    },
  };
}
