// Passes a `docker save` tar archive on to the engine's load, entry by entry, while reading
// what it holds. The small metadata files that name images — `manifest.json` (Docker's
// current format), `repositories` (the legacy format, also written alongside the current one)
// and `index.json` (OCI layout) — are held back and rewritten so the image is loaded under
// the worker's own name only: a task's tarball can never re-tag `ubuntu:latest` on the host.
// The end of the archive is written only on commit(): until then the engine has an
// unfinished archive, and abort() leaves it with a broken one, so it loads nothing.
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tarStream from 'tar-stream';

/** What the archive holds, known once all of it was read. */
export interface TarballContents {
  /** current: manifest.json; legacy: repositories only. */
  format: 'current' | 'legacy';
  /** How many images the archive holds. */
  imageCount: number;
  /** The names (repo:tag) the archive gives its images, for messages. */
  names: string[];
}

/** The archive is not one image as `docker save` writes it; the message is for the task log. */
export class TarballContentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TarballContentError';
  }
}

const HELD = new Set(['manifest.json', 'repositories', 'index.json']);
const HELD_LIMIT = 8 * 1024 * 1024;

type Header = tarStream.Header;
interface Held { header: Header; data: Buffer }

function entryName(name: string): string {
  return name.replace(/^(\.\/)+/, '');
}

async function readAll(entry: AsyncIterable<Buffer>, name: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of entry) {
    size += chunk.length;
    if (size > HELD_LIMIT) throw new TarballContentError(`The image archive's ${name} is larger than ${HELD_LIMIT / 1024 / 1024} MiB; it is not an archive made by docker save.`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function parseJson(held: Held | undefined, name: string): unknown {
  if (!held) return undefined;
  try {
    return JSON.parse(held.data.toString('utf8'));
  } catch {
    throw new TarballContentError(`The image archive's ${name} is not valid JSON.`);
  }
}

type ManifestEntry = { Config?: string; RepoTags?: string[] | null; Layers?: string[]; [k: string]: unknown };

export class ImageTarball {
  /** The rewritten archive, for the engine's load. */
  readonly output: Readable;
  private readonly pack = tarStream.pack();
  private readonly held = new Map<string, Held>();
  private contents: TarballContents | undefined;
  private finished = false;

  constructor() {
    this.output = Readable.from(this.pack as unknown as AsyncIterable<Buffer>);
  }

  /**
   * Reads the whole archive from `source`, passing every entry but the metadata on. Resolves
   * with what the archive holds; rejects when it is not a tar archive, is cut short, or holds no
   * image manifest. Nothing is committed: call commit() or abort() next.
   */
  async read(source: Readable): Promise<TarballContents> {
    const extract = tarStream.extract();
    let sourceError: unknown;
    const piping = pipeline(source, extract as unknown as NodeJS.WritableStream).catch((err: unknown) => {
      sourceError ??= err;
      (extract as unknown as { destroy(e: unknown): void }).destroy(err);
    });
    try {
      for await (const entry of extract) {
        const header = entry.header;
        const name = entryName(header.name);
        if (HELD.has(name) && (header.type === 'file' || header.type === 'contiguous-file')) {
          this.held.set(name, { header, data: await readAll(entry as unknown as AsyncIterable<Buffer>, name) });
          continue;
        }
        await new Promise<void>((resolve, reject) => {
          const sink = this.pack.entry(header, (err?: Error | null) => (err ? reject(err) : resolve()));
          pipeline(entry as unknown as NodeJS.ReadableStream, sink as unknown as NodeJS.WritableStream).catch(reject);
        });
      }
    } catch (err) {
      throw sourceError ?? err;
    }
    await piping;
    if (sourceError) throw sourceError;
    this.contents = this.inspect();
    return this.contents;
  }

  private inspect(): TarballContents {
    const manifest = parseJson(this.held.get('manifest.json'), 'manifest.json');
    const repositories = parseJson(this.held.get('repositories'), 'repositories');
    if (manifest !== undefined) {
      if (!Array.isArray(manifest)) throw new TarballContentError('The image archive\'s manifest.json is not a list of images.');
      const names = (manifest as ManifestEntry[]).flatMap((m) => m.RepoTags ?? []);
      return { format: 'current', imageCount: manifest.length, names };
    }
    if (repositories !== undefined && repositories !== null && typeof repositories === 'object') {
      const ids = new Set<string>();
      const names: string[] = [];
      for (const [repo, tags] of Object.entries(repositories as Record<string, Record<string, string>>)) {
        for (const [tag, id] of Object.entries(tags ?? {})) { ids.add(id); names.push(`${repo}:${tag}`); }
      }
      return { format: 'legacy', imageCount: ids.size, names };
    }
    throw new TarballContentError('The artifact is a tar archive without an image manifest (neither manifest.json nor repositories); make it with docker save.');
  }

  /** Writes the metadata naming the image `repository:tag` only, and ends the archive. */
  async commit(repository: string, tag: string): Promise<void> {
    if (!this.contents) throw new Error('commit() before read() finished');
    if (this.contents.imageCount !== 1) throw new Error('commit() of an archive that does not hold exactly one image');
    const name = `${repository}:${tag}`;
    const manifest = parseJson(this.held.get('manifest.json'), 'manifest.json') as ManifestEntry[] | undefined;
    if (manifest) this.rewrite('manifest.json', manifest.map((m) => ({ ...m, RepoTags: [name] })));
    const repositories = parseJson(this.held.get('repositories'), 'repositories') as Record<string, Record<string, string>> | undefined;
    if (repositories) {
      const id = Object.values(repositories).flatMap((tags) => Object.values(tags ?? {}))[0];
      this.rewrite('repositories', id ? { [repository]: { [tag]: id } } : {});
    }
    const index = parseJson(this.held.get('index.json'), 'index.json') as { manifests?: { annotations?: Record<string, string> }[] } | undefined;
    if (index && Array.isArray(index.manifests)) {
      for (const m of index.manifests) {
        if (!m.annotations) continue;
        if ('io.containerd.image.name' in m.annotations) m.annotations['io.containerd.image.name'] = `docker.io/${name}`;
        if ('org.opencontainers.image.ref.name' in m.annotations) m.annotations['org.opencontainers.image.ref.name'] = tag;
      }
      this.rewrite('index.json', index);
    }
    for (const { header, data } of this.held.values()) {
      await new Promise<void>((resolve, reject) => {
        this.pack.entry({ ...header, size: data.length }, data, (err?: Error | null) => (err ? reject(err) : resolve()));
      });
    }
    this.finished = true;
    this.pack.finalize();
  }

  private rewrite(name: string, value: unknown): void {
    const held = this.held.get(name)!;
    held.data = Buffer.from(JSON.stringify(value));
  }

  /** Breaks the archive off: the engine sees it cut short and loads nothing. */
  abort(reason: unknown): void {
    if (this.finished) return;
    this.finished = true;
    const err = reason instanceof Error ? reason : new Error(String(reason));
    this.output.destroy(err);
    (this.pack as unknown as { destroy(e: Error): void }).destroy(err);
  }
}
