// Durable state of the embedded deployment: one SQLite database (Node's built-in
// node:sqlite, WAL mode) under the state directory. Each service owns its own tables and
// creates them with CREATE TABLE IF NOT EXISTS when it starts.
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

export type Database = DatabaseSync;

export function openStore(stateDir: string): Database {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const db = new DatabaseSync(path.join(stateDir, 'embedded.sqlite'));
  db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;');
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
