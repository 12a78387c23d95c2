// Stored blobs: bytes on disk (BlobFiles) plus one row each in the `blobs` table with size,
// hashes, Content-Type/Content-Encoding and expiry. Object-service objects and queue `s3`
// artifacts both keep their data here, under distinct keys. A sealed blob is immutable.
import path from 'node:path';
import type { Readable } from 'node:stream';
import { durable, transaction, type Database } from '../store.ts';
import type { EmbeddedContext } from '../context.ts';
import { BlobFiles } from './blob-files.ts';

export interface BlobRecord {
  key: string;
  file: string;
  size: number;
  sha256: string;
  /** Empty until someone asked for it (hash()). */
  sha512: string;
  contentType: string;
  contentEncoding: string | undefined;
  sealed: boolean;
  /** Milliseconds since the epoch. */
  expires: number;
}

export interface BlobPut {
  contentType: string;
  contentEncoding?: string;
  expectedLength?: number;
  expires: number;
}

export class BlobSealed extends Error {
  constructor(key: string) { super(`blob ${key} is final and cannot be replaced`); }
}

interface BlobRow {
  key: string; file: string; size: number; sha256: string; sha512: string;
  content_type: string; content_encoding: string | null; sealed: number; expires: number;
}

const toRecord = (r: BlobRow): BlobRecord => ({
  key: r.key, file: r.file, size: r.size, sha256: r.sha256, sha512: r.sha512,
  contentType: r.content_type, contentEncoding: r.content_encoding ?? undefined,
  sealed: r.sealed === 1, expires: r.expires,
});

export class BlobStore {
  private readonly db: Database;
  private readonly files: BlobFiles;

  constructor(db: Database, dir: string) {
    this.db = db;
    this.files = new BlobFiles(dir);
    db.exec(`CREATE TABLE IF NOT EXISTS blobs (
      key TEXT PRIMARY KEY,
      file TEXT NOT NULL,
      size INTEGER NOT NULL,
      sha256 TEXT NOT NULL,
      sha512 TEXT NOT NULL,
      content_type TEXT NOT NULL,
      content_encoding TEXT,
      sealed INTEGER NOT NULL DEFAULT 0,
      expires INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS blobs_expires ON blobs (expires);`);
  }

  get(key: string): BlobRecord | undefined {
    const row = this.db.prepare('SELECT * FROM blobs WHERE key = ?').get(key) as BlobRow | undefined;
    return row ? toRecord(row) : undefined;
  }

  /** Streams `source` in as the blob `key`, replacing any unsealed previous data. */
  async put(key: string, source: Readable, options: BlobPut): Promise<BlobRecord> {
    if (this.get(key)?.sealed) { source.resume(); throw new BlobSealed(key); }
    const written = await this.files.write(source, options.expectedLength);
    let replaced: string | undefined;
    try {
      transaction(this.db, () => {
        const old = this.get(key);
        if (old?.sealed) throw new BlobSealed(key);
        replaced = old?.file;
        this.db.prepare(`INSERT INTO blobs (key, file, size, sha256, sha512, content_type, content_encoding, sealed, expires)
          VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?)
          ON CONFLICT (key) DO UPDATE SET file = excluded.file, size = excluded.size, sha256 = excluded.sha256,
            sha512 = excluded.sha512, content_type = excluded.content_type,
            content_encoding = excluded.content_encoding, expires = excluded.expires`)
          .run(key, written.file, written.size, written.sha256, '', options.contentType,
            options.contentEncoding ?? null, options.expires);
      });
      await durable(this.db);
    } catch (err) {
      await this.files.remove(written.file);
      throw err;
    }
    if (replaced) await this.files.remove(replaced);
    return this.get(key)!;
  }

  /** The blob's digest; sha512 is computed from the file the first time it is asked for. */
  async hash(record: BlobRecord, algorithm: 'sha256' | 'sha512'): Promise<string> {
    if (algorithm === 'sha256') return record.sha256;
    if (record.sha512) return record.sha512;
    const digest = await this.files.digest(record.file, 'sha512');
    this.db.prepare('UPDATE blobs SET sha512 = ? WHERE key = ? AND file = ?').run(digest, record.key, record.file);
    record.sha512 = digest;
    return digest;
  }

  /** Makes the blob immutable and sets how long it is kept. */
  seal(key: string, expires: number): void {
    this.db.prepare('UPDATE blobs SET sealed = 1, expires = ? WHERE key = ?').run(expires, key);
  }

  setExpires(key: string, expires: number): void {
    this.db.prepare('UPDATE blobs SET expires = ? WHERE key = ?').run(expires, key);
  }

  open(record: BlobRecord): Readable {
    return this.files.open(record.file);
  }

  async delete(key: string): Promise<void> {
    await this.deleteMany([key]);
  }

  /** Deletes these blobs: their rows in one commit, then their files. */
  async deleteMany(keys: string[]): Promise<void> {
    const files: string[] = [];
    const remove = this.db.prepare('DELETE FROM blobs WHERE key = ? RETURNING file');
    transaction(this.db, () => {
      for (const key of keys) {
        const row = remove.get(key) as { file: string } | undefined;
        if (row) files.push(row.file);
      }
    });
    await durable(this.db); // the rows go first: a file is never missing under a committed row
    for (const file of files) await this.files.remove(file);
  }

  /** Deletes blobs whose expiry has passed, rows and files. */
  async sweep(now = Date.now()): Promise<number> {
    const expired = this.db.prepare('DELETE FROM blobs WHERE expires < ? RETURNING file').all(now) as { file: string }[];
    await durable(this.db);
    for (const { file } of expired) await this.files.remove(file);
    return expired.length;
  }
}

const stores = new WeakMap<Database, BlobStore>();

/** The deployment's one blob store, under <stateDir>/objects/. */
export function blobStoreFor(ctx: EmbeddedContext): BlobStore {
  let store = stores.get(ctx.db);
  if (!store) {
    store = new BlobStore(ctx.db, path.join(ctx.settings.stateDir, 'objects'));
    stores.set(ctx.db, store);
  }
  return store;
}
