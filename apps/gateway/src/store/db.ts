// The gateway's one SQLite file: leases, the interface table and NAT samples. WAL + FULL sync so a
// kill -9 (or power cut) never loses a committed lease or decision; the DHCP server's group commit
// (dhcp/leases.ts `atomically`) commits with NORMAL and fdatasyncs the WAL itself before any reply.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

export type Db = Database.Database;

const MIGRATIONS: string[] = [
  `CREATE TABLE leases (
     ip TEXT PRIMARY KEY,
     ip_num INTEGER NOT NULL,
     mac TEXT,
     state TEXT NOT NULL CHECK (state IN ('offered', 'bound', 'released', 'declined')),
     expires_at INTEGER NOT NULL,
     hostname TEXT,
     updated_at INTEGER NOT NULL
   );
   CREATE INDEX leases_mac ON leases (mac);
   CREATE TABLE interfaces (
     mac TEXT NOT NULL,
     gateway_interface TEXT NOT NULL,
     tips_id TEXT,
     state TEXT NOT NULL CHECK (state IN ('pending', 'active', 'blocked')),
     type TEXT NOT NULL,
     ip TEXT,
     pxe INTEGER NOT NULL DEFAULT 0,
     hostname TEXT,
     since INTEGER NOT NULL,
     reason TEXT,
     attempts INTEGER NOT NULL DEFAULT 0,
     updated_at INTEGER NOT NULL,
     PRIMARY KEY (mac, gateway_interface)
   );
   CREATE TABLE nat (
     mac TEXT NOT NULL,
     gateway_interface TEXT NOT NULL,
     protocol TEXT NOT NULL,
     local_port INTEGER,
     destination TEXT NOT NULL,
     destination_port INTEGER,
     translated_address TEXT,
     outgoing_port INTEGER,
     seen_at INTEGER NOT NULL
   );
   CREATE INDEX nat_row ON nat (mac, gateway_interface);`,
];

/** Opens (creating if needed) `<dataDir>/gateway.db` and brings its schema up to date. */
export function openGatewayDb(dataDir: string, opts: { readonly?: boolean } = {}): Db {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const db = new Database(join(dataDir, 'gateway.db'), { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false });
  if (opts.readonly) return db;
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  const version = db.pragma('user_version', { simple: true }) as number;
  for (let v = version; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
  return db;
}
