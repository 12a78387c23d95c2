// The on-disk record of volume cache instances: which instances exist, the cache each belongs
// to, when each was created and last used. Instances are host directories
//
//   <dir>/<cache dir>/<instance id>/      bind-mounted into task containers
//   <dir>/<cache dir>/.cache-name         the cache's name (cache dirs of odd names are hashed)
//   <dir>/index.json                      created / lastUsed of each instance
//   <dir>/.trash/                         instances being deleted
//
// Opening the index adopts every instance directory found on disk (one the index does not
// know gets its directory's mtime), drops entries whose directory is gone, and empties the
// trash: after a restart every instance is free and none is orphaned. Which instances are in
// use is not recorded here: that lives in memory (volume-cache.ts), since after a restart no
// task of the old process runs any more.
import { randomBytes, createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';

export interface CacheInstance {
  /** Unique among all caches (also the directory name). */
  id: string;
  /** The cache name as the payload gives it. */
  name: string;
  /** Host directory bind-mounted into the container. */
  path: string;
  /** Milliseconds since the epoch. */
  created: number;
  lastUsed: number;
}

interface IndexFile { version: 1; instances: { id: string; name: string; created: number; lastUsed: number }[] }

const NAME_FILE = '.cache-name';
const TRASH = '.trash';
const INDEX = 'index.json';
const SAFE_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$/;
const INSTANCE_ID = /^[0-9a-z]+-[0-9a-f]{8}$/;

/** The directory of a cache: its name when that is a safe file name, else a hash of it. */
export function cacheDirName(name: string): string {
  return SAFE_NAME.test(name) ? name : `%${createHash('sha256').update(name).digest('hex').slice(0, 40)}`;
}

export class CacheIndex {
  readonly dir: string;
  private readonly instances = new Map<string, CacheInstance>();

  private constructor(dir: string) {
    this.dir = dir;
  }

  /** Opens (creating) the index under `dir`, adopting instances found on disk. */
  static async open(dir: string): Promise<CacheIndex> {
    const index = new CacheIndex(dir);
    await mkdir(path.join(dir, TRASH), { recursive: true });
    await index.emptyTrash();
    const known = new Map<string, IndexFile['instances'][number]>();
    try {
      const file = JSON.parse(await readFile(path.join(dir, INDEX), 'utf8')) as IndexFile;
      for (const entry of file.instances ?? []) known.set(entry.id, entry);
    } catch { /* no index yet, or unreadable: the directories are the truth */ }
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.name === TRASH) continue;
      const cacheDir = path.join(dir, entry.name);
      let name: string;
      try { name = await readFile(path.join(cacheDir, NAME_FILE), 'utf8'); } catch { continue; }
      for (const inst of await readdir(cacheDir, { withFileTypes: true })) {
        if (!inst.isDirectory() || !INSTANCE_ID.test(inst.name)) continue;
        const instancePath = path.join(cacheDir, inst.name);
        const record = known.get(inst.name);
        const mtime = record ? 0 : (await stat(instancePath)).mtimeMs;
        index.instances.set(inst.name, {
          id: inst.name, name, path: instancePath,
          created: record?.created ?? mtime, lastUsed: record?.lastUsed ?? mtime,
        });
      }
    }
    index.save();
    return index;
  }

  list(): CacheInstance[] {
    return [...this.instances.values()];
  }

  get(id: string): CacheInstance | undefined {
    return this.instances.get(id);
  }

  /** Records a new instance and creates its (empty) directory. Synchronous on purpose. */
  create(name: string, now = Date.now()): CacheInstance {
    const cacheDir = path.join(this.dir, cacheDirName(name));
    mkdirSync(cacheDir, { recursive: true });
    if (!existsSync(path.join(cacheDir, NAME_FILE))) writeFileSync(path.join(cacheDir, NAME_FILE), name);
    const id = `${now.toString(36)}-${randomBytes(4).toString('hex')}`;
    const instance: CacheInstance = { id, name, path: path.join(cacheDir, id), created: now, lastUsed: now };
    mkdirSync(instance.path); // 0755 as docker-worker made them: tasks running as another user chown it as root first
    this.instances.set(id, instance);
    this.save();
    return instance;
  }

  touch(id: string, now = Date.now()): void {
    const instance = this.instances.get(id);
    if (!instance) return;
    instance.lastUsed = now;
    this.save();
  }

  /**
   * Forgets an instance and deletes its directory. The directory moves to the trash at once
   * (so nothing can reuse it), then is deleted; resolves when its space is free.
   */
  async remove(id: string): Promise<void> {
    const instance = this.instances.get(id);
    if (!instance) return;
    const trashed = path.join(this.dir, TRASH, `${id}-${randomBytes(3).toString('hex')}`);
    try {
      renameSync(instance.path, trashed);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      this.instances.delete(id);
      this.save();
      return;
    }
    this.instances.delete(id);
    this.save();
    await rm(trashed, { recursive: true, force: true });
  }

  private async emptyTrash(): Promise<void> {
    const trash = path.join(this.dir, TRASH);
    for (const entry of await readdir(trash)) await rm(path.join(trash, entry), { recursive: true, force: true });
  }

  private save(): void {
    const file: IndexFile = {
      version: 1,
      instances: this.list().map(({ id, name, created, lastUsed }) => ({ id, name, created, lastUsed })),
    };
    const target = path.join(this.dir, INDEX);
    writeFileSync(`${target}.tmp`, JSON.stringify(file));
    renameSync(`${target}.tmp`, target);
  }
}
