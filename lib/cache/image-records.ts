// What the disk budget needs to know about images: only those the worker itself pulled or
// loaded, when each was last used and whether a running task uses it. The image owner
// (lib/images/image-store.ts) provides this; RecordedImages is a small stand-in with the same
// shape — a record (JSON under the state directory) of images the worker brought, with use
// counts held in memory — for as long as the image owner does not.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { Engine } from '../docker/engine.ts';

export interface BroughtImage {
  imageId: string;
  /** The references the worker pulled or loaded it as ("repo:tag", "repo@sha256:…"). */
  names: string[];
  /** Milliseconds since the epoch. */
  lastUsed: number;
  inUse: boolean;
}

/** The images the worker brought; the disk budget evicts only these. */
export interface ImageRecords {
  list(): BroughtImage[] | Promise<BroughtImage[]>;
  /** Checked again right before an image is removed. */
  inUse(imageId: string): boolean;
  /** The image is gone (or no longer the worker's to remove). */
  forget(imageId: string): void | Promise<void>;
}

interface Entry { imageId: string; names: string[]; lastUsed: number }

export class RecordedImages implements ImageRecords {
  private readonly file: string;
  private readonly engine: Pick<Engine, 'listImages'>;
  private readonly entries = new Map<string, Entry>();
  private readonly uses = new Map<string, number>();
  private readonly now: () => number;

  /** `file`: e.g. `<stateDir>/images.json`; an existing record is read back. */
  constructor(file: string, engine: Pick<Engine, 'listImages'>, now: () => number = Date.now) {
    this.file = file;
    this.engine = engine;
    this.now = now;
    try {
      for (const e of JSON.parse(readFileSync(file, 'utf8')) as Entry[]) this.entries.set(e.imageId, e);
    } catch { /* nothing recorded yet */ }
  }

  /** The worker pulled or loaded `imageId` as `name`. */
  record(imageId: string, name: string): void {
    const entry = this.entries.get(imageId) ?? { imageId, names: [], lastUsed: this.now() };
    if (!entry.names.includes(name)) entry.names.push(name);
    entry.lastUsed = this.now();
    this.entries.set(imageId, entry);
    this.save();
  }

  /** A task starts using the image; call the returned function when its container is gone. */
  use(imageId: string): () => void {
    this.uses.set(imageId, (this.uses.get(imageId) ?? 0) + 1);
    this.touch(imageId);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const left = (this.uses.get(imageId) ?? 1) - 1;
      if (left > 0) this.uses.set(imageId, left); else this.uses.delete(imageId);
      this.touch(imageId);
    };
  }

  inUse(imageId: string): boolean {
    return (this.uses.get(imageId) ?? 0) > 0;
  }

  /** Recorded images the engine still has (others are forgotten). */
  async list(): Promise<BroughtImage[]> {
    const present = new Set((await this.engine.listImages()).map((i) => i.id));
    const out: BroughtImage[] = [];
    for (const e of [...this.entries.values()]) {
      if (!present.has(e.imageId)) { if (!this.inUse(e.imageId)) this.forget(e.imageId); continue; }
      out.push({ ...e, names: [...e.names], inUse: this.inUse(e.imageId) });
    }
    return out;
  }

  forget(imageId: string): void {
    if (this.entries.delete(imageId)) this.save();
  }

  private touch(imageId: string): void {
    const entry = this.entries.get(imageId);
    if (!entry) return;
    entry.lastUsed = this.now();
    this.save();
  }

  private save(): void {
    writeFileSync(`${this.file}.tmp`, JSON.stringify([...this.entries.values()]));
    renameSync(`${this.file}.tmp`, this.file);
  }
}
