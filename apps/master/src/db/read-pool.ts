import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * Read-only SQLite statements run on worker threads, each with its own read-only better-sqlite3
 * connection to the master's database file (`--read-threads`). better-sqlite3 runs every statement
 * on the calling thread: on the master's one connection, a page of the metal list (an index range
 * scan, 100 rows read and joined) is CPU the event loop cannot spend on HTTP. Here the HTTP work and
 * the SQL run on two cores.
 *
 * Only reads that are correct from a fresh snapshot go here. The database is in WAL mode: a read on
 * another connection sees every transaction committed before it began — the master's writes commit
 * on its own connection before their answer is sent, so a client that wrote and then reads sees its
 * write (read your writes across requests). A read that overlaps a transaction still open on the main
 * connection sees the state before it, as if it had run first: the write is not acknowledged yet.
 * Writes, and reads inside a transaction, stay on the main connection.
 *
 * A blob column comes back as a Buffer whose memory is transferred from the worker (no copy).
 */
export interface ReadPool {
  /** The first row of a read-only statement (`undefined` for none); `params` bind positionally. */
  get<R>(sql: string, params: readonly (string | number | null)[]): Promise<R | undefined>;
  /** Number of worker threads. */
  readonly size: number;
  /** False once a worker has failed or the pool is closed: read on the main connection then. */
  readonly usable: boolean;
  /** Stops the workers; pending reads are refused. */
  close(): Promise<void>;
}

/**
 * Default `--read-threads`: none. Measured on the shared 2-core machine (bench/RESULTS.md, metal-list
 * fifth round), one worker cut the event loop's CPU a page by 25–45 % but raised the process's by
 * 40–70 % (the worker spends about twice the page's SQL time, woken for each small batch), so with no
 * idle core it served fewer pages; `TIPS_BENCH_READ_THREADS=0,1,0,1` measures both on a given machine.
 */
export const DEFAULT_READ_THREADS = 0;
export const MAX_READ_THREADS = 16;

// The worker's code, evaluated as a CommonJS script (no file to ship beside the bundle). It opens
// the file read-only (`query_only` too) and answers { id, row } / { id, error }, transferring every
// Buffer's memory when the Buffer owns all of it, copying it otherwise.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { readonly: true, fileMustExist: true });
db.pragma('busy_timeout = 5000');
db.pragma('query_only = ON');
const statements = new Map();
const one = (m, transfer) => {
  try {
    let st = statements.get(m.sql);
    if (!st) {
      st = db.prepare(m.sql);
      if (!st.reader) throw new Error('the read pool runs only statements that return rows');
      if (statements.size >= 100) statements.delete(statements.keys().next().value);
      statements.set(m.sql, st);
    }
    const row = st.get(...m.params);
    if (row) {
      for (const k of Object.keys(row)) {
        const v = row[k];
        if (v instanceof Uint8Array) {
          if (v.byteOffset === 0 && v.byteLength === v.buffer.byteLength) transfer.push(v.buffer);
          else row[k] = new Uint8Array(v);
        }
      }
    }
    return { id: m.id, row };
  } catch (e) {
    return { id: m.id, error: { message: String(e && e.message), code: e && e.code } };
  }
};
// A message is a batch of reads (those asked in one turn of the master's event loop); one answer for all.
parentPort.on('message', (batch) => {
  const transfer = [];
  const out = new Array(batch.length);
  for (let i = 0; i < batch.length; i++) out[i] = one(batch[i], transfer);
  parentPort.postMessage(out, transfer);
});
parentPort.postMessage({ ready: true });
`;

interface Pending {
  resolve: (row: unknown) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
  /** Reads asked in this turn of the event loop, posted together (one message, one wake-up) by `flush`. */
  queued: { id: number; sql: string; params: readonly (string | number | null)[] }[];
}

type Reply = { id: number; row?: Record<string, unknown>; error?: { message: string; code?: string } };

/** A blob arrives as a Uint8Array over the transferred memory: a Buffer over the same bytes. */
function asBuffers(row: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (row) {
    for (const k of Object.keys(row)) {
      const v = row[k];
      if (v instanceof Uint8Array && !Buffer.isBuffer(v)) row[k] = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    }
  }
  return row;
}

class SqliteReadPool implements ReadPool {
  readonly slots: Slot[] = [];
  private nextId = 1;
  private broken: Error | undefined;

  get size(): number {
    return this.slots.length;
  }

  get usable(): boolean {
    return this.broken === undefined;
  }

  get<R>(sql: string, params: readonly (string | number | null)[]): Promise<R | undefined> {
    if (this.broken) return Promise.reject(this.broken);
    // The worker with the fewest reads in flight (ties: the first).
    let slot = this.slots[0]!;
    for (const s of this.slots) if (s.pending.size < slot.pending.size) slot = s;
    const id = this.nextId++;
    return new Promise<R | undefined>((resolve, reject) => {
      slot.pending.set(id, { resolve: resolve as (row: unknown) => void, reject });
      if (slot.queued.push({ id, sql, params }) === 1) setImmediate(() => this.flush(slot));
    });
  }

  private flush(slot: Slot): void {
    const batch = slot.queued;
    slot.queued = [];
    if (batch.length && !this.broken) slot.worker.postMessage(batch);
  }

  /** A worker failed (or the pool closed): its reads are refused, and so is every later one. */
  fail(slot: Slot | undefined, e: Error): void {
    this.broken ??= e;
    for (const s of slot ? [slot] : this.slots) {
      for (const p of s.pending.values()) p.reject(e);
      s.pending.clear();
      s.queued = [];
    }
  }

  add(worker: Worker): void {
    const slot: Slot = { worker, pending: new Map(), queued: [] };
    this.slots.push(slot);
    worker.on('message', (replies: Reply[]) => {
      for (const m of replies) {
        const p = slot.pending.get(m.id);
        if (!p) continue;
        slot.pending.delete(m.id);
        if (m.error) p.reject(Object.assign(new Error(m.error.message), { code: m.error.code }));
        else p.resolve(asBuffers(m.row));
      }
    });
    worker.on('error', (e) => this.fail(slot, e));
    worker.on('exit', (code) => this.fail(slot, new Error(`read worker exited (${code})`)));
    // The HTTP server keeps the process alive; an idle read worker must not.
    worker.unref();
  }

  async close(): Promise<void> {
    this.fail(undefined, new Error('read pool closed'));
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}

/**
 * Starts `size` workers on the SQLite database `file` (already migrated, in WAL mode) and waits
 * until each has opened it. When a worker fails, its pending reads are refused with its error and
 * the pool is no longer `usable` (callers read on the main connection instead).
 */
export async function openReadPool(file: string, size: number): Promise<ReadPool> {
  if (!Number.isInteger(size) || size < 1 || size > MAX_READ_THREADS) throw new RangeError(`read threads must be an integer from 1 to ${MAX_READ_THREADS}`);
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const pool = new SqliteReadPool();
  try {
    for (let i = 0; i < size; i++) {
      const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { driver, file }, name: `tips-sqlite-read-${i}` });
      await new Promise<void>((resolve, reject) => {
        const onExit = (code: number) => reject(new Error(`read worker exited (${code}) before opening ${file}`));
        worker.once('error', reject);
        worker.once('exit', onExit);
        worker.once('message', () => {
          worker.off('error', reject);
          worker.off('exit', onExit);
          resolve();
        });
      }).catch(async (e) => {
        await worker.terminate();
        throw e;
      });
      pool.add(worker);
    }
  } catch (e) {
    await pool.close();
    throw e;
  }
  return pool;
}
