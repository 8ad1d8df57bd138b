import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { buildApp } from './app.ts';
import { FsBlobStore } from './blob/fs-blob-store.ts';
import { ConfigError, DEFAULTS, loadConfig, type RawOptions } from './config.ts';
import { openDatabase } from './db/database.ts';

const program = new Command('tips-master')
  .description('TIPS master: the Controller (owners, metals, Spaces, Glazes), discovery and updates, over HTTP')
  .addOption(new Option('--host <addr>', 'address to listen on').env('TIPS_HOST').default(DEFAULTS.host))
  .addOption(new Option('--port <n>', 'TCP port (0 = any free port)').env('TIPS_PORT').default(String(DEFAULTS.port)))
  .addOption(new Option('--data-dir <dir>', 'where the SQLite database and Glaze blobs live').env('TIPS_DATA_DIR').default(DEFAULTS.dataDir))
  .addOption(new Option('--database-url <url>', 'sqlite:<file> or postgres://user@host:port/db (default: SQLite in the data dir)').env('TIPS_DATABASE_URL'))
  .addOption(new Option('--max-glaze-bytes <n>', 'largest Glaze accepted').env('TIPS_MAX_GLAZE_BYTES').default(String(DEFAULTS.maxGlazeBytes)))
  .addOption(new Option('--log-level <level>', 'pino log level').env('TIPS_LOG_LEVEL').default(DEFAULTS.logLevel))
  .addHelpText(
    'after',
    '\nEnvironment: TIPS_BOOTSTRAP_ADMIN_TOKEN sets the admin token created on the first start (automation);\notherwise a random one is printed once.',
  )
  .action(async (opts: RawOptions) => {
    let config: ReturnType<typeof loadConfig>;
    try {
      config = loadConfig(opts);
    } catch (err) {
      if (err instanceof ConfigError) program.error(`error: ${err.message}`, { exitCode: 2 });
      throw err;
    }
    mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
    const db = await openDatabase(config.database);
    const blobs = await FsBlobStore.open(join(config.dataDir, 'glazes'));
    const { app, services } = await buildApp({
      db,
      blobs,
      maxGlazeBytes: config.maxGlazeBytes,
      logger: { level: config.logLevel, redact: ['req.headers.authorization'] },
    });
    const admin = await services.owners.ensureAdmin(config.bootstrapAdminToken);
    const address = await app.listen({ host: config.host, port: config.port });
    const url = address.replace('[::1]', 'localhost');
    process.stdout.write(`TIPS master listening on ${url}  (API docs: ${url}/docs)\n`);
    if (admin && !config.bootstrapAdminToken) {
      process.stdout.write(`Admin API token (shown once, keep it safe):\n  ${admin.token}\nLog in with: tips login --url ${url} --token <token>\n`);
    }
    let closing = false;
    const shutdown = async () => {
      if (closing) return;
      closing = true;
      await app.close();
      await db.destroy();
      process.exit(0);
    };
    process.on('SIGINT', shutdown);
    process.on('SIGTERM', shutdown);
  });

await program.parseAsync(process.argv);
