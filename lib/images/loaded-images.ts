// The worker's memory of the image artifacts it loaded, kept in a small JSON file under its
// state directory so it survives a restart: artifact identity (taskId/runId/path) -> content
// digest, local name and image id, also found by content digest (an artifact of another task
// with the same bytes is the same image). Also when each image was last used. The engine stays
// the judge of what is present: a remembered image that is gone is simply loaded again.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** Least time between two writes caused by touch() alone. */
const TOUCH_SAVE_DELAY_MS = 1000;

export interface LoadedImageRecord {
  /** taskId/runId/path of the artifact. */
  key: string;
  taskId: string;
  runId: number;
  path: string;
  /** `sha256:<hex>` of the artifact's bytes. */
  digest: string;
  /** The local name it was loaded under, and the engine's image id. */
  name: string;
  imageId: string;
  bytes: number;
  loadedAt: string;
}

interface FileContents {
  version: 1;
  artifacts: Record<string, LoadedImageRecord>;
  /** imageId -> epoch ms of the last time a task was given it. */
  lastUsed: Record<string, number>;
  /** Registry images this worker pulled when no copy was on the host: imageId -> name. */
  pulled: Record<string, string>;
}

export class LoadedImages {
  readonly file: string;
  private contents: FileContents;
  /** A write of last-use times waiting (touch()); any other change writes them with it. */
  private pendingSave: NodeJS.Timeout | undefined;

  private constructor(file: string, contents: FileContents) {
    this.file = file;
    this.contents = contents;
  }

  /** Opens (or starts) the memory in `dir`; an unreadable file is started afresh. */
  static open(dir: string): LoadedImages {
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, 'loaded-images.json');
    let contents: FileContents = { version: 1, artifacts: {}, lastUsed: {}, pulled: {} };
    try {
      const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<FileContents>;
      if (parsed && parsed.version === 1) contents = { version: 1, artifacts: parsed.artifacts ?? {}, lastUsed: parsed.lastUsed ?? {}, pulled: parsed.pulled ?? {} };
    } catch {
      // no file yet, or a damaged one: the engine still has the images, they are just loaded again
    }
    return new LoadedImages(file, contents);
  }

  get(key: string): LoadedImageRecord | undefined {
    return this.contents.artifacts[key];
  }

  put(record: LoadedImageRecord): void {
    this.contents.artifacts[record.key] = record;
    this.save();
  }

  delete(key: string): void {
    if (!(key in this.contents.artifacts)) return;
    delete this.contents.artifacts[key];
    this.save();
  }

  /** The records of artifacts whose bytes hash to `digest` (`sha256:<hex>`), newest first. */
  withDigest(digest: string): LoadedImageRecord[] {
    return this.records().filter((r) => r.digest === digest).sort((a, b) => (a.loadedAt < b.loadedAt ? 1 : -1));
  }

  records(): LoadedImageRecord[] {
    return Object.values(this.contents.artifacts);
  }

  /**
   * Records a use. Uses come twice per task (lease taken, lease given back), so they are written
   * at most once a second, with the next change or after that second: a crash loses at most the
   * last second of last-use times, which only decide how soon the garbage collector may remove an
   * image.
   */
  touch(imageId: string, at = Date.now()): void {
    this.contents.lastUsed[imageId] = at;
    if (this.pendingSave) return;
    this.pendingSave = setTimeout(() => {
      try {
        this.save();
      } catch {
        // A write that fails (a full disk) is tried again with the next change.
      }
    }, TOUCH_SAVE_DELAY_MS);
    this.pendingSave.unref();
  }

  /** Remembers a registry image the worker brought onto the host (only those may be evicted). */
  recordPull(imageId: string, name: string): void {
    if (this.contents.pulled[imageId] === name) return;
    this.contents.pulled[imageId] = name;
    this.save();
  }

  pulledImages(): { imageId: string; name: string }[] {
    return Object.entries(this.contents.pulled).map(([imageId, name]) => ({ imageId, name }));
  }

  lastUsed(imageId: string): number | undefined {
    return this.contents.lastUsed[imageId];
  }

  /** Forgets an image the garbage collector removed. */
  forgetImage(imageId: string): void {
    delete this.contents.lastUsed[imageId];
    delete this.contents.pulled[imageId];
    for (const [key, record] of Object.entries(this.contents.artifacts)) {
      if (record.imageId === imageId) delete this.contents.artifacts[key];
    }
    this.save();
  }

  private save(): void {
    clearTimeout(this.pendingSave);
    this.pendingSave = undefined;
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.contents, null, 1));
    renameSync(tmp, this.file);
  }
}
