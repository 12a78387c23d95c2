// The disk budget's view of the worker's images, over the ImageStore (lib/images/image-store.ts):
// the image artifacts it loaded (task-image / indexed-image) with their leases and last use,
// and the registry images it pulled when no copy was on the host (only images the worker
// brought may be removed), plus, optionally, another record of pulled images.
import type { LoadedImageRecord } from '../images/loaded-images.ts';
import type { BroughtImage, ImageRecords } from './image-records.ts';

/** What this adapter uses of ImageStore. */
export interface ImageStoreView {
  inUse(imageId: string): boolean;
  lastUsed(imageId: string): number | undefined;
  loadedArtifacts(): LoadedImageRecord[];
  pulledImages(): { imageId: string; name: string }[];
  forget(imageId: string): void;
}

export class ImageStoreRecords implements ImageRecords {
  private readonly store: ImageStoreView;
  private readonly pulled: ImageRecords | undefined;

  /** `pulled`: registry images the worker pulled (e.g. a RecordedImages fed by stage 3), if recorded. */
  constructor(store: ImageStoreView, pulled?: ImageRecords) {
    this.store = store;
    this.pulled = pulled;
  }

  async list(): Promise<BroughtImage[]> {
    const byId = new Map<string, BroughtImage>();
    const add = (imageId: string, names: string[], lastUsed: number) => {
      const entry = byId.get(imageId) ?? { imageId, names: [], lastUsed: 0, inUse: false };
      for (const n of names) if (!entry.names.includes(n)) entry.names.push(n);
      entry.lastUsed = Math.max(entry.lastUsed, lastUsed, this.store.lastUsed(imageId) ?? 0);
      entry.inUse = this.inUse(imageId);
      byId.set(imageId, entry);
    };
    for (const r of this.store.loadedArtifacts()) add(r.imageId, [r.name], Date.parse(r.loadedAt) || 0);
    for (const p of this.store.pulledImages()) add(p.imageId, [p.name], 0);
    for (const p of (await this.pulled?.list()) ?? []) add(p.imageId, p.names, p.lastUsed);
    return [...byId.values()];
  }

  inUse(imageId: string): boolean {
    return this.store.inUse(imageId) || (this.pulled?.inUse(imageId) ?? false);
  }

  async forget(imageId: string): Promise<void> {
    this.store.forget(imageId);
    await this.pulled?.forget(imageId);
  }
}
