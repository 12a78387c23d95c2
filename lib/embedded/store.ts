// Durable state of the embedded deployment: one SQLite database (Node's built-in
// node:sqlite, WAL mode) under the state directory. Each service owns its own tables and
// creates them with CREATE TABLE IF NOT EXISTS when it starts.
//
// The database holds every client's access token, so the state directory is made 0700 on
// every start (mkdir's mode only applies when it creates the directory) and the database
// files 0600 (SQLite gives its -wal and -shm files the mode of the database file).
// synchronous = FULL: a change the caller was told about survives a power loss too (in WAL
// mode NORMAL may lose the last commits then; a killed process loses nothing either way).
// journal_size_limit: the write-ahead log is cut back to 64 MiB whenever a checkpoint empties
// it, so a burst of writes (a big expiry sweep) does not leave a large file behind.
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { chmodSync, mkdirSync } from 'node:fs';
import path from 'node:path';

export type Database = DatabaseSync;

export const DATABASE_FILE = 'embedded.sqlite';

function chmodIfPresent(file: string, mode: number): void {
  try {
    chmodSync(file, mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

export function openStore(stateDir: string): Database {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  chmodSync(stateDir, 0o700);
  const file = path.join(stateDir, DATABASE_FILE);
  // Files SQLite creates while opening are private from the start (no window at 0644).
  const umask = process.umask(0o077);
  let db: Database;
  try {
    db = new DatabaseSync(file);
    db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA journal_size_limit = 67108864; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;');
  } finally {
    process.umask(umask);
  }
  // Files left by an older version, which did not restrict them.
  for (const f of [file, `${file}-wal`, `${file}-shm`]) chmodIfPresent(f, 0o600);
  return db;
}

// Group commit. With synchronous = FULL each COMMIT waits for an fsync (about 1 ms here, more
// on a busy disk and as the database grows), so one transaction per request capped createTask
// at the disk's fsyncs per second. Instead, the first change opens one write transaction
// (BEGIN IMMEDIATE) and every change made until the event loop's next check phase joins it as a
// SAVEPOINT (rolled back alone when it throws); then one COMMIT makes them all durable at once.
// Nothing is told before that: the services answer only once durable() settles, and a file is
// unlinked only after the row that named it is durably gone. Should a COMMIT ever fail (disk
// full, I/O error), the store refuses every later change and answer (500) until restarted.

interface CommitGroup { committed: Promise<void>; resolve(): void; reject(err: unknown): void }

const openGroups = new WeakMap<Database, CommitGroup>();
const commitFailures = new WeakMap<Database, unknown>();

function joinGroup(db: Database): void {
  if (openGroups.has(db)) return;
  if (commitFailures.has(db)) throw commitFailures.get(db);
  db.exec('BEGIN IMMEDIATE');
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const committed = new Promise<void>((res, rej) => { resolve = res; reject = rej; });
  committed.catch(() => {}); // a failure is reported through durable(), not as an unhandled rejection
  openGroups.set(db, { committed, resolve, reject });
  setImmediate(() => commitGroup(db));
}

/** Commits the open group now (its timer finds nothing left); before closing the database. */
export function commitGroup(db: Database): void {
  const group = openGroups.get(db);
  if (!group) return;
  openGroups.delete(db);
  try {
    db.exec('COMMIT');
    group.resolve();
  } catch (err) {
    try { if (db.isTransaction) db.exec('ROLLBACK'); } catch { /* gone with the error */ }
    commitFailures.set(db, err);
    group.reject(err);
  }
}

function failGroup(db: Database, err: unknown): void {
  const group = openGroups.get(db);
  openGroups.delete(db);
  commitFailures.set(db, err);
  group?.reject(err);
}

/** Settles once every change made so far is committed; rejects if their commit failed. */
export function durable(db: Database): Promise<void> {
  if (commitFailures.has(db)) return Promise.reject(commitFailures.get(db));
  return openGroups.get(db)?.committed ?? Promise.resolve();
}

/**
 * Runs fn as one atomic change (a SAVEPOINT in the open commit group: concurrent writers wait,
 * never interleave; a throw undoes fn's changes alone). Durable once durable(db) settles.
 */
export function transaction<T>(db: Database, fn: () => T): T {
  joinGroup(db);
  db.exec('SAVEPOINT change');
  try {
    const result = fn();
    db.exec('RELEASE change');
    return result;
  } catch (err) {
    if (db.isTransaction) db.exec('ROLLBACK TO change; RELEASE change');
    else failGroup(db, err); // SQLite rolled the whole group back (e.g. disk full): its changes are lost
    throw err;
  }
}

/** A store of one service's tables: creates them on construction and caches prepared statements. */
export class SqlStore {
  readonly db: Database;
  private readonly statements = new Map<string, StatementSync>();

  constructor(db: Database, schema: string) {
    this.db = db;
    db.exec(schema);
  }

  protected sql(text: string): StatementSync {
    let s = this.statements.get(text);
    if (!s) { s = this.db.prepare(text); this.statements.set(text, s); }
    return s;
  }
}
