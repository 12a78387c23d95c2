// Objects of the object service: a name, a project, an expiry, content hashes and (while
// the upload is unfinished) its uploadId. The data itself is a blob under key `object/<name>`.
// The queue uses this store directly for `object` artifacts, as the real queue calls the
// object service.
import { Readable } from 'node:stream';
import type { Database } from '../store.ts';
import { transaction } from '../store.ts';
import type { EmbeddedContext } from '../context.ts';
import { ApiError, conflict, inputError, notFound } from '../api/errors.ts';
import { blobStoreFor, type BlobStore } from './blob-store.ts';
import { signBlobUrl } from './signed-url.ts';

export type Hashes = Record<string, string>;

export interface StoredObject {
  name: string;
  projectId: string;
  /** Present while the upload is unfinished. */
  uploadId: string | undefined;
  uploadExpires: number | undefined;
  expires: number;
  hashes: Hashes;
}

export interface UploadRequest {
  projectId: string;
  uploadId: string;
  expires: Date;
  hashes?: Hashes;
}

/** Hash algorithms whose values are checked against the stored bytes. */
const VERIFIED = ['sha256', 'sha512'] as const;
const UNFINISHED_UPLOAD_MS = 24 * 3600 * 1000;
export const PUT_URL_SECONDS = 45 * 60;

interface ObjectRow { name: string; project_id: string; upload_id: string | null; upload_expires: number | null; expires: number; hashes: string }

const toObject = (r: ObjectRow): StoredObject => ({
  name: r.name, projectId: r.project_id, uploadId: r.upload_id ?? undefined,
  uploadExpires: r.upload_expires ?? undefined, expires: r.expires, hashes: JSON.parse(r.hashes) as Hashes,
});

export const blobKeyOfObject = (name: string) => `object/${name}`;

export class ObjectStore {
  private readonly db: Database;
  private readonly ctx: EmbeddedContext;
  readonly blobs: BlobStore;

  constructor(ctx: EmbeddedContext) {
    this.ctx = ctx;
    this.db = ctx.db;
    this.blobs = blobStoreFor(ctx);
    this.db.exec(`CREATE TABLE IF NOT EXISTS objects (
      name TEXT PRIMARY KEY,
      project_id TEXT NOT NULL,
      upload_id TEXT,
      upload_expires INTEGER,
      expires INTEGER NOT NULL,
      hashes TEXT NOT NULL DEFAULT '{}'
    )`);
  }

  get(name: string): StoredObject | undefined {
    const row = this.db.prepare('SELECT * FROM objects WHERE name = ?').get(name) as ObjectRow | undefined;
    return row ? toObject(row) : undefined;
  }

  /** A finished, unexpired object, or 404. */
  readable(name: string): StoredObject {
    const object = this.get(name);
    if (!object || object.uploadId !== undefined || object.expires <= Date.now()) throw notFound(`Object "${name}"`);
    return object;
  }

  /**
   * Starts (or renews) an upload: the first call fixes projectId, uploadId and expires;
   * a repeat with the same values is accepted, anything else is a conflict.
   */
  beginUpload(name: string, request: UploadRequest): StoredObject {
    return transaction(this.db, () => {
      const existing = this.get(name);
      const expires = request.expires.getTime();
      if (!existing) {
        this.db.prepare('INSERT INTO objects (name, project_id, upload_id, upload_expires, expires, hashes) VALUES (?, ?, ?, ?, ?, ?)')
          .run(name, request.projectId, request.uploadId, Date.now() + UNFINISHED_UPLOAD_MS, expires, JSON.stringify(request.hashes ?? {}));
        return this.get(name)!;
      }
      if (existing.uploadId === undefined) throw conflict(`Object "${name}" already exists and is finished`, { name });
      if (existing.uploadId !== request.uploadId || existing.projectId !== request.projectId || existing.expires !== expires) {
        throw conflict(`Object "${name}" is already being uploaded with a different uploadId, projectId or expires`, { name });
      }
      const hashes = mergeHashes(name, existing.hashes, request.hashes);
      this.db.prepare('UPDATE objects SET hashes = ? WHERE name = ?').run(JSON.stringify(hashes), name);
      return { ...existing, hashes };
    });
  }

  /** Moves the expiry of an unfinished upload (queue: an artifact's expires may be extended). */
  extendUnfinished(name: string, expires: Date): void {
    this.db.prepare('UPDATE objects SET expires = ? WHERE name = ? AND upload_id IS NOT NULL AND expires < ?')
      .run(expires.getTime(), name, expires.getTime());
  }

  /** dataInline: stores the decoded bytes at once. */
  async storeInline(name: string, contentType: string, objectData: string): Promise<void> {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(objectData) || objectData.length % 4 !== 0) {
      throw inputError('dataInline.objectData is not valid base64');
    }
    const bytes = Buffer.from(objectData, 'base64');
    const object = this.get(name)!;
    await this.blobs.put(blobKeyOfObject(name), Readable.from([bytes]), {
      contentType, expectedLength: bytes.length, expires: object.uploadExpires ?? object.expires,
    });
  }

  /** putUrl: a URL that accepts exactly this Content-Type and Content-Length. */
  putUrl(name: string, contentType: string, contentLength: number): { url: string; expires: string; headers: Record<string, string> } {
    const object = this.get(name)!;
    const expires = Date.now() + PUT_URL_SECONDS * 1000;
    const url = signBlobUrl(this.ctx.settings.blobUrlBase ?? this.ctx.rootUrl(), this.ctx.urlSecret, {
      method: 'PUT', key: blobKeyOfObject(name), expires: expires + 10_000,
      contentType, contentLength, identityOnly: true, keep: object.uploadExpires ?? object.expires,
    });
    return {
      url,
      expires: new Date(expires).toISOString(),
      headers: { 'Content-Type': contentType, 'Content-Length': String(contentLength), 'Content-Encoding': 'identity' },
    };
  }

  /**
   * Finishes an upload: the stored bytes must match every sha256/sha512 given now or at
   * createUpload; on a mismatch the object stays unfinished (unreadable) and its data is dropped.
   */
  async finishUpload(name: string, projectId: string, uploadId: string, hashes: Hashes = {}): Promise<void> {
    const object = this.get(name);
    if (!object) throw notFound(`Object "${name}"`);
    if (object.projectId !== projectId) throw inputError(`Object "${name}" does not have projectId ${projectId}`, { name, projectId });
    if (object.uploadId === undefined) {
      for (const [algo, hash] of Object.entries(hashes)) {
        if (object.hashes[algo] !== hash) {
          throw conflict(`Object "${name}" is already finished, with a different or no ${algo} hash`, { name, algo });
        }
      }
      return;
    }
    if (object.uploadId !== uploadId) throw conflict(`Object "${name}" does not have uploadId ${uploadId}`, { name, uploadId });
    const declared = mergeHashes(name, object.hashes, hashes);
    const key = blobKeyOfObject(name);
    const blob = this.blobs.get(key);
    if (!blob) {
      throw inputError(`No data has been uploaded for object "${name}": PUT it to the putUrl (or use dataInline) before finishUpload`, { name });
    }
    for (const algo of VERIFIED) {
      if (declared[algo] === undefined) continue;
      const actual = await this.blobs.hash(blob, algo);
      if (declared[algo] !== actual) {
        await this.blobs.delete(key);
        throw new ApiError('InputError',
          `The uploaded data of object "${name}" does not match its ${algo} hash (declared ${declared[algo]}, received data hashes to ${actual}); the data was discarded, upload it again`,
          { name, algo });
      }
    }
    // Downloads are told every verified hash: sha256 always (computed as the data arrived),
    // sha512 when the uploader declared one.
    const final = { ...declared, sha256: blob.sha256 };
    transaction(this.db, () => {
      if (this.blobs.get(key)?.file !== blob.file) throw conflict(`The data of object "${name}" was replaced while finishing; call finishUpload again`, { name });
      const changed = this.db.prepare('UPDATE objects SET upload_id = NULL, upload_expires = NULL, hashes = ? WHERE name = ? AND upload_id = ?')
        .run(JSON.stringify(final), name, uploadId);
      if (changed.changes !== 1) throw conflict(`Object "${name}" was finished concurrently`, { name });
      this.blobs.seal(key, object.expires);
    });
  }

  /** A signed URL serving the object's bytes, valid for `seconds`. */
  downloadUrl(name: string, seconds: number): { url: string; expires: Date } {
    const expires = new Date(Date.now() + seconds * 1000);
    const url = signBlobUrl(this.ctx.settings.blobUrlBase ?? this.ctx.rootUrl(), this.ctx.urlSecret, { method: 'GET', key: blobKeyOfObject(name), expires: expires.getTime() });
    return { url, expires };
  }

  /** Deletes expired objects and unfinished uploads older than a day, with their data. */
  async sweep(now = Date.now()): Promise<void> {
    const gone = this.db.prepare(`DELETE FROM objects WHERE expires < ? OR (upload_id IS NOT NULL AND upload_expires < ?)
      RETURNING name`).all(now, now) as { name: string }[];
    for (const { name } of gone) await this.blobs.delete(blobKeyOfObject(name));
  }
}

function mergeHashes(name: string, existing: Hashes, added: Hashes | undefined): Hashes {
  const merged = { ...existing };
  for (const [algo, hash] of Object.entries(added ?? {})) {
    if (merged[algo] !== undefined && merged[algo] !== hash) {
      throw conflict(`Object "${name}" already has a different ${algo} hash`, { name, algo });
    }
    merged[algo] = hash;
  }
  return merged;
}

const stores = new WeakMap<Database, ObjectStore>();

export function objectStoreFor(ctx: EmbeddedContext): ObjectStore {
  let store = stores.get(ctx.db);
  if (!store) { store = new ObjectStore(ctx); stores.set(ctx.db, store); }
  return store;
}
