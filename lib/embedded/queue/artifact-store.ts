// Artifacts of task runs, one row per (taskId, runId, name) in `queue_artifacts`, with the
// storage-type details the queue keeps: s3 (data in the blob store), object (an object in
// the object service, `uploadId` until finished), reference (url), link (artifact),
// error (reason, message). `present` is false only for an unfinished object artifact.
import type { Database } from '../store.ts';
import { pageOf, type PageRequest } from '../index/paging.ts';

export type StorageType = 's3' | 'object' | 'reference' | 'link' | 'error';

export interface Artifact {
  taskId: string;
  runId: number;
  name: string;
  storageType: StorageType;
  contentType: string;
  contentLength: number | undefined;
  details: Record<string, string>;
  present: boolean;
  /** Milliseconds since the epoch. */
  expires: number;
}

/** The artifact-response.json shape. */
export interface ArtifactInfo { storageType: StorageType; name: string; expires: string; contentType: string; contentLength?: number }

interface Row {
  task_id: string; run_id: number; name: string; storage_type: StorageType; content_type: string;
  content_length: number | null; details: string; present: number; expires: number;
}

const toArtifact = (r: Row): Artifact => ({
  taskId: r.task_id, runId: r.run_id, name: r.name, storageType: r.storage_type, contentType: r.content_type,
  contentLength: r.content_length ?? undefined, details: JSON.parse(r.details) as Record<string, string>,
  present: r.present === 1, expires: r.expires,
});

export function describeArtifact(a: Artifact): ArtifactInfo {
  const info: ArtifactInfo = { storageType: a.storageType, name: a.name, expires: new Date(a.expires).toISOString(), contentType: a.contentType };
  if (a.contentLength !== undefined) info.contentLength = a.contentLength;
  return info;
}

/** Where the data of an s3 artifact is kept in the blob store. */
export const blobKeyOfArtifact = (taskId: string, runId: number, name: string) => `artifact/${taskId}/${runId}/${name}`;

/** The object-service name of an object artifact (as the real queue derives it). */
export const objectNameOfArtifact = (taskId: string, runId: number, name: string) => `t/${taskId}/${runId}/${name}`;

export class ArtifactStore {
  private readonly db: Database;

  constructor(db: Database) {
    this.db = db;
    db.exec(`CREATE TABLE IF NOT EXISTS queue_artifacts (
      task_id TEXT NOT NULL,
      run_id INTEGER NOT NULL,
      name TEXT NOT NULL,
      storage_type TEXT NOT NULL,
      content_type TEXT NOT NULL,
      content_length INTEGER,
      details TEXT NOT NULL,
      present INTEGER NOT NULL,
      expires INTEGER NOT NULL,
      PRIMARY KEY (task_id, run_id, name)
    );
    CREATE INDEX IF NOT EXISTS queue_artifacts_expires ON queue_artifacts (expires);`);
  }

  get(taskId: string, runId: number, name: string): Artifact | undefined {
    const row = this.db.prepare('SELECT * FROM queue_artifacts WHERE task_id = ? AND run_id = ? AND name = ?')
      .get(taskId, runId, name) as Row | undefined;
    return row ? toArtifact(row) : undefined;
  }

  /** Inserts a new artifact; false when one of that name already exists. */
  insert(a: Artifact): boolean {
    const result = this.db.prepare(`INSERT INTO queue_artifacts
      (task_id, run_id, name, storage_type, content_type, content_length, details, present, expires)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`)
      .run(a.taskId, a.runId, a.name, a.storageType, a.contentType, a.contentLength ?? null,
        JSON.stringify(a.details), a.present ? 1 : 0, a.expires);
    return result.changes === 1;
  }

  /** The changes createArtifact may make to an existing artifact. */
  update(taskId: string, runId: number, name: string, change: { storageType: StorageType; details: Record<string, string>; expires: number }): void {
    this.db.prepare('UPDATE queue_artifacts SET storage_type = ?, details = ?, expires = ? WHERE task_id = ? AND run_id = ? AND name = ?')
      .run(change.storageType, JSON.stringify(change.details), change.expires, taskId, runId, name);
  }

  /** finishArtifact: the object is uploaded; the uploadId is no longer needed. */
  markPresent(taskId: string, runId: number, name: string): void {
    this.db.prepare(`UPDATE queue_artifacts SET present = 1, details = '{}' WHERE task_id = ? AND run_id = ? AND name = ?`)
      .run(taskId, runId, name);
  }

  /** Present artifacts of a run, by name. */
  list(taskId: string, runId: number, page: PageRequest): { artifacts: ArtifactInfo[]; continuationToken?: string } {
    const after = String(page.after?.[0] ?? '');
    const rows = this.db.prepare(`SELECT * FROM queue_artifacts WHERE task_id = ? AND run_id = ? AND present = 1 AND name > ?
      ORDER BY name LIMIT ?`).all(taskId, runId, after, page.limit + 1) as unknown as Row[];
    const result = pageOf(rows, page.limit, (r) => [r.name]);
    return { artifacts: result.rows.map((r) => describeArtifact(toArtifact(r))), continuationToken: result.continuationToken };
  }

  /** Deletes up to `limit` artifacts past their expiry and returns them. */
  deleteExpired(now: number, limit: number): Artifact[] {
    const rows = this.db.prepare(`DELETE FROM queue_artifacts WHERE rowid IN
      (SELECT rowid FROM queue_artifacts WHERE expires < ? LIMIT ?) RETURNING *`).all(now, limit) as unknown as Row[];
    return rows.map(toArtifact);
  }
}
