// The index: named pointers `a.b.c` to tasks, kept as the real index keeps them — an
// indexed task (namespace "a.b", name "c", rank, taskId, data, expires) plus one row per
// namespace level ("" → "a", "a" → "b") so namespaces can be browsed. A lower rank never
// replaces a higher one. Expired entries read as absent and are deleted by the sweep.
import type { Database } from '../store.ts';
import { transaction } from '../store.ts';
import { inputError, notFound } from '../api/errors.ts';
import { pageOf, type PageRequest } from './paging.ts';

/** Valid namespaces and index paths (the real index's pattern). */
export const NAMESPACE_PATTERN = /^([a-zA-Z0-9_!~*'()%-]+\.)*[a-zA-Z0-9_!~*'()%-]+$/;
const MAX_NAMESPACE_LENGTH = 255;

export interface IndexedTask {
  namespace: string;
  taskId: string;
  rank: number;
  data: Record<string, unknown>;
  expires: string;
}

export interface IndexNamespace { namespace: string; name: string; expires: string }

export interface TaskToIndex { taskId: string; rank: number; data: Record<string, unknown>; expires: Date }

interface TaskRow { namespace: string; name: string; rank: number; task_id: string; data: string; expires: number }
interface NamespaceRow { parent: string; name: string; expires: number }

const join = (parent: string, name: string) => (parent && name ? `${parent}.${name}` : parent + name);

function split(path: string): [string, string] {
  const parts = path.split('.');
  const name = parts.pop() ?? '';
  return [parts.join('.'), name];
}

export function checkNamespace(path: string, what = 'namespace'): void {
  if (path.length > MAX_NAMESPACE_LENGTH || !NAMESPACE_PATTERN.test(path)) {
    throw inputError(`${what} ${JSON.stringify(path)} is not valid: use dot-separated words of letters, digits and _!~*'()%- (at most ${MAX_NAMESPACE_LENGTH} characters)`);
  }
}

const toTask = (r: TaskRow): IndexedTask => ({
  namespace: join(r.namespace, r.name), taskId: r.task_id, rank: r.rank,
  data: JSON.parse(r.data) as Record<string, unknown>, expires: new Date(r.expires).toISOString(),
});

/** Namespaces live until the day after their latest task expires (as the real index rounds). */
function namespaceExpiry(expires: Date): number {
  return Date.UTC(expires.getUTCFullYear(), expires.getUTCMonth(), expires.getUTCDate() + 1);
}

export class IndexStore {
  private readonly db: Database;

  constructor(db: Database) {
    this.db = db;
    db.exec(`CREATE TABLE IF NOT EXISTS index_tasks (
      namespace TEXT NOT NULL,
      name TEXT NOT NULL,
      rank REAL NOT NULL,
      task_id TEXT NOT NULL,
      data TEXT NOT NULL,
      expires INTEGER NOT NULL,
      PRIMARY KEY (namespace, name)
    );
    CREATE TABLE IF NOT EXISTS index_namespaces (
      parent TEXT NOT NULL,
      name TEXT NOT NULL,
      expires INTEGER NOT NULL,
      PRIMARY KEY (parent, name)
    );`);
  }

  /** Indexes a task at `path` unless a higher-ranked one is there; returns what is indexed now. */
  insert(path: string, task: TaskToIndex): IndexedTask {
    checkNamespace(path);
    const [namespace, name] = split(path);
    return transaction(this.db, () => {
      const existing = this.row(namespace, name);
      if (existing && existing.rank > task.rank) return toTask(existing);
      this.db.prepare(`INSERT INTO index_tasks (namespace, name, rank, task_id, data, expires) VALUES (?, ?, ?, ?, ?, ?)
        ON CONFLICT (namespace, name) DO UPDATE SET rank = excluded.rank, task_id = excluded.task_id,
          data = excluded.data, expires = excluded.expires`)
        .run(namespace, name, task.rank, task.taskId, JSON.stringify(task.data), task.expires.getTime());
      this.ensureNamespaces(namespace, namespaceExpiry(task.expires));
      return toTask(this.row(namespace, name)!);
    });
  }

  private ensureNamespaces(namespace: string, expires: number): void {
    const upsert = this.db.prepare(`INSERT INTO index_namespaces (parent, name, expires) VALUES (?, ?, ?)
      ON CONFLICT (parent, name) DO UPDATE SET expires = MAX(expires, excluded.expires)`);
    const parts = namespace ? namespace.split('.') : [];
    for (let i = 0; i < parts.length; i++) upsert.run(parts.slice(0, i).join('.'), parts[i], expires);
  }

  private row(namespace: string, name: string): TaskRow | undefined {
    return this.db.prepare('SELECT * FROM index_tasks WHERE namespace = ? AND name = ?').get(namespace, name) as TaskRow | undefined;
  }

  /** The task at `path`, or 404 when there is none or it expired. */
  find(path: string): IndexedTask {
    const found = this.findIfPresent(path);
    if (!found) throw notFound(`Indexed task ${path}`);
    return found;
  }

  findIfPresent(path: string, now = Date.now()): IndexedTask | undefined {
    const row = this.row(...split(path));
    return row && row.expires > now ? toTask(row) : undefined;
  }

  listTasks(namespace: string, page: PageRequest): { tasks: IndexedTask[]; continuationToken?: string } {
    const after = String(page.after?.[0] ?? '');
    const rows = this.db.prepare(`SELECT * FROM index_tasks WHERE namespace = ? AND expires > ? AND name > ?
      ORDER BY name LIMIT ?`).all(namespace, Date.now(), after, page.limit + 1) as unknown as TaskRow[];
    const result = pageOf(rows, page.limit, (r) => [r.name]);
    return { tasks: result.rows.map(toTask), continuationToken: result.continuationToken };
  }

  listNamespaces(parent: string, page: PageRequest): { namespaces: IndexNamespace[]; continuationToken?: string } {
    const after = String(page.after?.[0] ?? '');
    const rows = this.db.prepare(`SELECT * FROM index_namespaces WHERE parent = ? AND expires > ? AND name > ?
      ORDER BY name LIMIT ?`).all(parent, Date.now(), after, page.limit + 1) as unknown as NamespaceRow[];
    const result = pageOf(rows, page.limit, (r) => [r.name]);
    return {
      namespaces: result.rows.map((r) => ({ namespace: join(r.parent, r.name), name: r.name, expires: new Date(r.expires).toISOString() })),
      continuationToken: result.continuationToken,
    };
  }

  /** The tasks present at the given paths, in the order given; absent paths are skipped. */
  findMany(paths: string[], page: PageRequest): { tasks: IndexedTask[]; continuationToken?: string } {
    const start = typeof page.after?.[0] === 'number' ? page.after[0] + 1 : 0;
    const found: { position: number; task: IndexedTask }[] = [];
    for (let i = start; i < paths.length && found.length <= page.limit; i++) {
      const task = this.findIfPresent(paths[i]);
      if (task) found.push({ position: i, task });
    }
    const result = pageOf(found, page.limit, (f) => [f.position]);
    return { tasks: result.rows.map((f) => f.task), continuationToken: result.continuationToken };
  }

  delete(path: string): void {
    this.db.prepare('DELETE FROM index_tasks WHERE namespace = ? AND name = ?').run(...split(path));
  }

  sweep(now = Date.now()): void {
    this.db.prepare('DELETE FROM index_tasks WHERE expires <= ?').run(now);
    this.db.prepare('DELETE FROM index_namespaces WHERE expires <= ?').run(now);
  }
}
