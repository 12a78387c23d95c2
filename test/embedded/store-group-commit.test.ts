// The store's group commit (lib/embedded/store.ts): changes made in one turn of the event loop
// share one COMMIT, durable() settles only once they are on disk (seen from a second
// connection), a failing change undoes only itself, and a failed COMMIT is never reported as
// durable and stops the store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { DATABASE_FILE, durable, openStore, transaction } from '../../lib/embedded/store.ts';

function withStore(fn: (db: DatabaseSync, other: () => DatabaseSync) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'group-commit-'));
    const db = openStore(dir);
    db.exec('CREATE TABLE t (n INTEGER PRIMARY KEY)');
    let reader: DatabaseSync | undefined;
    const other = () => (reader ??= new DatabaseSync(path.join(dir, DATABASE_FILE), { readOnly: true }));
    try {
      await fn(db, other);
    } finally {
      reader?.close();
      if (db.isOpen) db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

const count = (db: DatabaseSync) => (db.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n;

test('changes of one turn are committed together, and durable() settles only after the commit', withStore(async (db, other) => {
  assert.equal(count(other()), 0);
  for (let n = 1; n <= 5; n++) transaction(db, () => db.prepare('INSERT INTO t VALUES (?)').run(n));
  assert.equal(count(db), 5, 'the writer sees its own changes at once');
  assert.equal(count(other()), 0, 'nothing is committed before the turn ends');
  await durable(db);
  assert.equal(count(other()), 5, 'all five are committed when durable() settles');
  await durable(db); // nothing open: settles at once
}));

test('a change that throws is undone alone; the rest of its group commits', withStore(async (db, other) => {
  transaction(db, () => db.prepare('INSERT INTO t VALUES (1)').run());
  assert.throws(() => transaction(db, () => {
    db.prepare('INSERT INTO t VALUES (2)').run();
    db.prepare('INSERT INTO t VALUES (1)').run(); // duplicate key
  }), /UNIQUE/);
  transaction(db, () => db.prepare('INSERT INTO t VALUES (3)').run());
  await durable(db);
  assert.deepEqual(other().prepare('SELECT n FROM t ORDER BY n').all().map((r) => r.n), [1, 3]);
}));

test('a COMMIT that fails is never reported durable, and the store refuses later changes', withStore(async (db, other) => {
  // A deferred foreign key is checked at COMMIT: the one way to make COMMIT itself fail here.
  db.exec('CREATE TABLE child (p INTEGER REFERENCES t(n) DEFERRABLE INITIALLY DEFERRED)');
  transaction(db, () => db.prepare('INSERT INTO t VALUES (1)').run());
  transaction(db, () => db.prepare('INSERT INTO child VALUES (42)').run());
  await assert.rejects(durable(db), /FOREIGN KEY/);
  assert.equal(count(other()), 0, 'the whole group was rolled back');
  assert.equal(db.isTransaction, false);
  assert.throws(() => transaction(db, () => db.prepare('INSERT INTO t VALUES (2)').run()), /FOREIGN KEY/);
  await assert.rejects(durable(db), /FOREIGN KEY/);
}));
