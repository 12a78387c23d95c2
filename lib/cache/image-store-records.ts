// The disk budget's view of the worker's images, over the ImageStore (lib/images/image-store.ts):
// the image artifacts it loaded (task-image / indexed-image) and the registry images it pulled
// onto the host (only images the worker brought may be removed), with their leases and last
// use, and the store's per-image lock, under which the budget removes an image so that no task
// can be acquiring it meanwhile.
import type { LoadedImageRecord } from '../images/loaded-images.ts';

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
  /** Checked again, inside exclusive(), right before an image is removed. */
  inUse(imageId: string): boolean;
  /** Runs the removal of `imageId` so that no task acquires the image meanwhile. */
  exclusive<T>(imageId: string, fn: () => Promise<T>): Promise<T>;
  /** The image is gone (or no longer the worker's to remove). */
  forget(imageId: string): void | Promise<void>;
}

/** What this adapter uses of ImageStore. */
export interface ImageStoreView {
  inUse(imageId: string): boolean;
  lastUsed(imageId: string): number | undefined;
  exclusive<T>(imageId: string, fn: () => Promise<T>): Promise<T>;
  loadedArtifacts(): LoadedImageRecord[];
  pulledImages(): { imageId: string; name: string }[];
  forget(imageId: string): void;
}

export class ImageStoreRecords implements ImageRecords {
  private readonly store: ImageStoreView;

  constructor(store: ImageStoreView) {
    this.store = store;
  }

  list(): BroughtImage[] {
    const byId = new Map<string, BroughtImage>();
    const add = (imageId: string, name: string, lastUsed: number) => {
      const entry = byId.get(imageId) ?? { imageId, names: [], lastUsed: 0, inUse: false };
      if (!entry.names.includes(name)) entry.names.push(name);
      entry.lastUsed = Math.max(entry.lastUsed, lastUsed, this.store.lastUsed(imageId) ?? 0);
      entry.inUse = this.store.inUse(imageId);
      byId.set(imageId, entry);
    };
    for (const r of this.store.loadedArtifacts()) add(r.imageId, r.name, Date.parse(r.loadedAt) || 0);
    for (const p of this.store.pulledImages()) add(p.imageId, p.name, 0);
    return [...byId.values()];
  }

  inUse(imageId: string): boolean {
    return this.store.inUse(imageId);
  }

  exclusive<T>(imageId: string, fn: () => Promise<T>): Promise<T> {
    return this.store.exclusive(imageId, fn);
  }

  forget(imageId: string): void {
    this.store.forget(imageId);
  }
}
