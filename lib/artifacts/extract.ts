// Turns the tar stream of the engine's archive API (GET /containers/{id}/archive?path=...,
// whose top entry is the basename of the path) into the files to upload, with their artifact
// names. Each file is handed to the caller as a stream straight out of the tar stream, one at
// a time: nothing on disk, never a whole file in memory.
//   file artifact       -> one file named `name`
//   directory artifact  -> `name/<relative path>` for every regular file inside, at any depth
// Symlinks, hard links, devices and the like are skipped, each reported as a `skipped` item.
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tarStream from 'tar-stream';

export interface ArtifactSource {
  /** Artifact name, e.g. `public/build` */
  name: string;
  type: 'file' | 'directory';
}

/** The path holds something other than the artifact's declared type. */
export class ArtifactTypeError extends Error {
  readonly reason = 'invalid-resource-on-worker' as const;
  readonly expected: string;
  readonly actual: string;
  constructor(name: string, expected: string, actual: string) {
    // docker-worker's wording, which task owners may grep for.
    super(`Error uploading "${name}". Expected artifact to be a "${expected}" but was "${actual}"`);
    this.name = 'ArtifactTypeError';
    this.expected = expected;
    this.actual = actual;
  }
}

function kindOf(type: string | null | undefined): string {
  if (type === 'file' || type === 'contiguous-file') return 'file';
  return type ?? 'unknown';
}

/** The entry's path below the top entry, or undefined if it tries to leave the directory. */
function relativePath(entryName: string): string[] | undefined {
  const parts = entryName.split('/').filter((p) => p !== '' && p !== '.');
  parts.shift();
  return parts.includes('..') ? undefined : parts;
}

/** One regular file of the artifact as a stream; read it to the end before asking for the next. */
export type ExtractedEntry =
  | { kind: 'entry'; name: string; size: number; stream: Readable; /** Path below the artifact's path ([] for a file artifact). */ relative: string[] }
  | { kind: 'skipped'; name: string; entryType: string; reason: string };

/**
 * The artifact's files straight out of the tar stream, one at a time, without touching the
 * disk. The caller must consume (or resume) each entry's stream before taking the next item.
 */
export async function* extractArtifactEntries(tar: Readable, artifact: ArtifactSource): AsyncGenerator<ExtractedEntry> {
  const extract = tarStream.extract();
  let sourceError: unknown;
  const piping = pipeline(tar, extract).catch((err: unknown) => { sourceError ??= err; });
  let first = true;
  try {
    for await (const entry of extract) {
      const { header } = entry;
      const kind = kindOf(header.type);
      if (first) {
        first = false;
        if (kind !== artifact.type) {
          entry.resume();
          throw new ArtifactTypeError(artifact.name, artifact.type, kind);
        }
      }
      if (kind === 'directory') { entry.resume(); continue; }
      const parts = artifact.type === 'file' ? [] : relativePath(header.name);
      const name = parts && parts.length > 0 ? `${artifact.name}/${parts.join('/')}` : artifact.name;
      if (kind !== 'file' || parts === undefined) {
        entry.resume();
        yield {
          kind: 'skipped', name, entryType: kind,
          reason: parts === undefined ? 'its path leaves the artifact directory' : `only regular files are uploaded, this is a ${kind}`,
        };
        continue;
      }
      const stream = entry as unknown as Readable;
      yield { kind: 'entry', name, size: header.size ?? 0, stream, relative: parts };
      if (!stream.readableEnded) stream.resume(); // whatever the caller left unread
      if (artifact.type === 'file') break;
    }
    if (artifact.type !== 'file' || first) {
      await piping;
      if (sourceError) throw sourceError;
    }
    if (first) throw new ArtifactTypeError(artifact.name, artifact.type, 'nothing');
  } finally {
    if (!extract.destroyed) extract.destroy();
    if (!tar.destroyed) tar.destroy();
  }
}

/**
 * The one regular file in an archive of a single file (the engine's archive of a file path):
 * the first upload of a file artifact, and how an upload retry reads a file again. The tar
 * stream is closed when the file's stream ends or is destroyed.
 */
export async function archivedFileEntry(tar: Readable, name: string): Promise<Extract<ExtractedEntry, { kind: 'entry' }>> {
  const entries = extractArtifactEntries(tar, { name, type: 'file' });
  const first = await entries.next();
  if (first.done || first.value.kind !== 'entry') {
    await entries.return(undefined);
    const found = first.done ? 'nothing' : first.value.kind === 'skipped' ? first.value.entryType : 'file';
    throw new ArtifactTypeError(name, 'file', found);
  }
  const finish = () => { void entries.return(undefined); };
  first.value.stream.once('end', finish);
  first.value.stream.once('close', finish);
  return first.value;
}

/** The stream of `archivedFileEntry`. */
export async function archivedFile(tar: Readable, name: string): Promise<Readable> {
  return (await archivedFileEntry(tar, name)).stream;
}
