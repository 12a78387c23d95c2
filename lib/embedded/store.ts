// Durable state of the embedded deployment: one SQLite database (Node's built-in
// node:sqlite, WAL mode) under the state directory. Each service owns its own tables and
// creates them with CREATE TABLE IF NOT EXISTS when it starts.
//
// The database holds every client's access token, so the state directory is made 0700 on
// every start (mkdir's mode only applies when it creates the directory) and the database
// files 0600 (SQLite gives its -wal and -shm files the mode of the database file).
// synchronous = FULL: a change the caller was told about survives a power loss too (in WAL
// mode NORMAL may lose the last commits then; a killed process loses nothing either way).
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
    db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;');
  } finally {
    process.umask(umask);
  }
  // Files left by an older version, which did not restrict them.
  for (const f of [file, `${file}-wal`, `${file}-shm`]) chmodIfPresent(f, 0o600);
  return db;
}

/** Runs fn inside a transaction (BEGIN IMMEDIATE: concurrent writers wait, never interleave). */
export function transaction<T>(db: Database, fn: () => T): T {
  db.exec('BEGIN IMMEDIATE');
  try {
    const result = fn();
    db.exec('COMMIT');
    return result;
  } catch (err) {
    db.exec('ROLLBACK');
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
