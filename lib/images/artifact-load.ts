// One attempt at turning an image artifact into a local image, streaming all the way:
//   download (fetch) -> count + sha256 -> decompress -> image tarball (names rewritten) -> engine load
// Nothing is written to disk by the worker. The archive is committed to the engine only when
// the download is complete, its hash matches the object service's, and it holds exactly one
// image; otherwise the engine gets a broken archive and loads nothing (it unpacks the whole
// archive before loading any of it, and the names are written only on commit), so a failed
// load never leaves a half-loaded or tagged image behind.
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { EngineError } from '../docker/engine-error.ts';
import type { Engine } from '../docker/engine.ts';
import { openArtifact, describeArtifact, describeNetworkError, type ResolvedArtifact } from './artifact-image.ts';
import { decompressStream, describe, UnsupportedFormat, type TarballFormat } from './decompress.ts';
import { formatBytes, formatRate } from '../log/format-bytes.ts';
import { DownloadMeter, type LineSink } from './download-progress.ts';
import { ImageFailure } from './errors.ts';
import { ImageTarball, TarballContentError } from './image-tarball.ts';
import { digestHex, localImageName } from './local-name.ts';

export interface LoadedArtifactImage {
  imageId: string;
  name: string;
  /** `sha256:<hex>` of the artifact's bytes. */
  digest: string;
  bytes: number;
  ms: number;
  format: TarballFormat;
}

export interface LoadOptions {
  emit: LineSink;
  signal: AbortSignal;
  progressIntervalMs?: number;
  /** The most the decompressed archive may hold; past it the load stops (the engine gets a broken archive). */
  maxExpandedBytes?: number;
}

/** The decompressed archive grew past what the load may use. */
export class ExpandedTooLarge extends Error {
  override name = 'ExpandedTooLarge';
}

/** Passes bytes through until more than `limit` went by, then fails with ExpandedTooLarge. */
function expansionLimit(limit: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      seen += chunk.length;
      if (seen > limit) done(new ExpandedTooLarge(`it expands to more than ${formatBytes(limit)}`));
      else done(null, chunk);
    },
  });
}

type Stage = 'download' | 'decompress' | 'tarball' | 'engine';

export async function loadArtifactImage(engine: Engine, artifact: ResolvedArtifact, options: LoadOptions): Promise<LoadedArtifactImage> {
  const what = describeArtifact(artifact);
  const { emit } = options;
  const local = new AbortController();
  const signal = AbortSignal.any([options.signal, local.signal]);
  const opened = await openArtifact(artifact, signal);
  emit(`Downloading image artifact ${what}${opened.length !== undefined ? ` (${formatBytes(opened.length)})` : ''}`);

  let firstFailure: { stage: Stage; error: unknown } | undefined;
  const fail = (stage: Stage) => (error: unknown) => { firstFailure ??= { stage, error }; };
  let format: TarballFormat = 'tar';
  const meter = new DownloadMeter({ label: artifact.path, total: opened.length, emit, intervalMs: options.progressIntervalMs });
  const decompressor = decompressStream(artifact.path, (f) => { format = f; });
  const tarball = new ImageTarball();
  opened.body.once('error', fail('download'));
  decompressor.once('error', fail('decompress'));
  // The archive's expanded bytes are bounded (a small compressed artifact can expand to fill the engine's disk).
  const decompress = options.maxExpandedBytes === undefined ? decompressor : decompressor.pipe(expansionLimit(options.maxExpandedBytes));
  if (decompress !== decompressor) {
    decompress.once('error', (err) => { fail('decompress')(err); local.abort(err); }); // stop the download too
    decompressor.once('error', (err) => decompress.destroy(err)); // pipe() does not pass errors on: the reader would wait forever
  }

  const loading = engine.loadImage(tarball.output).then(
    () => undefined,
    (err: unknown) => { fail('engine')(err); local.abort(err); return err; },
  );
  const feeding = pipeline(opened.body, meter, decompressor, { signal }).catch((err: unknown) => {
    fail('download')(err);
    tarball.abort(err);
  });
  let name: { repository: string; tag: string; name: string };
  try {
    let contents;
    try {
      contents = await tarball.read(decompress);
    } catch (err) {
      fail('tarball')(err);
      throw err;
    }
    await feeding;
    if (firstFailure) throw firstFailure.error;
    const digest = meter.digest;
    if (artifact.sha256 && digestHex(digest) !== artifact.sha256) {
      throw new ImageFailure('invalid',
        `The image artifact ${what} is corrupt: its data hashes to ${digest}, but the object service recorded sha256:${artifact.sha256}.`);
    }
    if (contents.imageCount !== 1) {
      const names = contents.names.length ? ` (${[...contents.names].sort().join(', ')})` : '';
      throw new ImageFailure('invalid',
        `The image artifact ${what} holds ${contents.imageCount} images${names}; an image artifact must hold exactly one image, as docker save of one image writes it.`);
    }
    name = localImageName(artifact, digest);
    emit(`Downloaded ${formatBytes(meter.bytes)} in ${(meter.elapsedMs / 1000).toFixed(1)} s (${formatRate(meter.bytes, meter.elapsedMs)}), ${describe(format)} data, ${digest}; loading it into Docker`);
    await tarball.commit(name.repository, name.tag);
  } catch (err) {
    firstFailure ??= { stage: 'tarball', error: err };
    tarball.abort(err);
    await loading;
    await feeding;
    options.signal.throwIfAborted();
    throw toFailure(firstFailure, what);
  }

  const loadError = await loading;
  // The legacy format loads without naming what it loaded: the engine's inspect is the judge.
  const inspected = await engine.inspectImage(name.name);
  if (!inspected) {
    options.signal.throwIfAborted();
    throw toFailure({ stage: 'engine', error: loadError ?? new Error('the image is not there after the load') }, what);
  }
  return { imageId: inspected.Id, name: name.name, digest: meter.digest, bytes: meter.bytes, ms: meter.elapsedMs, format };
}

function toFailure(failure: { stage: Stage; error: unknown }, what: string): ImageFailure {
  const { stage, error } = failure;
  if (error instanceof ImageFailure) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof UnsupportedFormat) return new ImageFailure('invalid', `The image artifact ${what} cannot be loaded: ${message}.`, error);
  if (error instanceof ExpandedTooLarge) {
    return new ImageFailure('invalid', `The image artifact ${what} cannot be loaded: ${message}, more than this worker's disk can take for an image now (image.maxExpandedBytes, and the free space above the disk threshold). Use a smaller image.`, error);
  }
  if (error instanceof TarballContentError) {
    // One sentence: "The image artifact X cannot be loaded: the artifact is a tar archive without ..."
    return new ImageFailure('invalid', `The image artifact ${what} cannot be loaded: ${message.charAt(0).toLowerCase()}${message.slice(1)}`, error);
  }
  switch (stage) {
    case 'download':
      return new ImageFailure('transient', `The download of the image artifact ${what} broke off: ${describeNetworkError(error)}.`, error);
    case 'decompress':
    case 'tarball':
      return new ImageFailure('invalid', `The image artifact ${what} is corrupt or truncated: ${message}.`, error);
    case 'engine':
      return new ImageFailure('engine', error instanceof EngineError ? error.message : `Docker could not load the image artifact ${what}: ${message}.`, error);
  }
}
