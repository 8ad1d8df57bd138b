import { mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { CliError } from './errors.ts';
import { writeFileDurably } from './files.ts';

export interface CliConfig {
  url: string;
  token: string;
}

/** `$TIPS_CONFIG`, else `$XDG_CONFIG_HOME/tips/config.json`, else `~/.config/tips/config.json`. */
export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.TIPS_CONFIG) return env.TIPS_CONFIG;
  return join(env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'tips', 'config.json');
}

/** Writes the config atomically (temp, fsync, rename) with mode 0600: it holds a secret. */
export function saveConfig(config: CliConfig, path = configPath()): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileDurably(path, `${JSON.stringify(config, null, 2)}\n`, 0o600);
}

/** The URL and token to use: `TIPS_URL`/`TIPS_TOKEN` override the saved login. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): CliConfig {
  let saved: Partial<CliConfig> = {};
  try {
    saved = JSON.parse(readFileSync(configPath(env), 'utf8')) as Partial<CliConfig>;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new CliError('config_unreadable', `cannot read ${configPath(env)}: ${(err as Error).message}`, 3);
    }
  }
  const url = env.TIPS_URL ?? saved.url;
  const token = env.TIPS_TOKEN ?? saved.token;
  if (!url || !token) throw new CliError('not_logged_in', 'not logged in: run `tips login --url URL --token TOKEN` first', 3);
  return { url, token };
}
