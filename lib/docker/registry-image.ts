// Makes a registry image (payload `image: "name[:tag|@digest]"`) ready to run.
//
// - A name pinned by digest that is present locally is used as is: no registry contact.
// - A tag is pulled every time, so a moved tag is noticed.
// - Pulls retry with exponential backoff on network/registry trouble, never on answers that
//   say the request is wrong (credentials refused, no such image).
// - When the registry cannot be reached but a local copy exists, the local copy is used after
//   one attempt, with a warning line.
// Progress goes to `onProgress` as plain lines for the task log.
import { withRetries } from '../retry/with-retries.ts';
import { EngineError } from './engine-error.ts';
import type { Engine, RegistryAuth } from './engine.ts';
import { DOCKER_HUB, parseImageName, type ImageName } from './image-name.ts';
import { classifyPullFailure, isRetryable, type PullFailureKind } from './pull-error.ts';
import { PullProgressReporter, type LineSink } from './pull-progress.ts';
import { imageScope, type RegistryCredentials } from './registry-credentials.ts';

export interface EnsureRegistryImageOptions {
  /** Credentials for the image's registry; pass them only when the task may use them. */
  credentials?: RegistryCredentials;
  /** Retries after the first attempt on network/registry errors (default 5). */
  retries?: number;
  /** Delay before the first retry; doubles each time (default 1000 ms). */
  baseDelayMs?: number;
  /** Plain-text progress and warning lines for the task log. */
  onProgress?: LineSink;
  /** Least time between two progress lines of one layer (default 5000 ms). */
  progressIntervalMs?: number;
  signal?: AbortSignal;
}

export interface EnsuredImage {
  image: ImageName;
  /** Local image id (sha256:...) of the image that will run. */
  imageId: string;
  /** repository@sha256:... as the registry serves it, when known. */
  repoDigest: string | undefined;
  /** local: pinned digest already present; registry: pulled now; local-fallback: registry unreachable. */
  source: 'local' | 'registry' | 'local-fallback';
}

export type ImageErrorKind = 'invalid-name' | PullFailureKind;

/** An image that cannot be made ready; `message` is one or two sentences for the task log. */
export class ImageError extends Error {
  readonly kind: ImageErrorKind;
  readonly imageName: string;
  constructor(kind: ImageErrorKind, imageName: string, message: string, cause?: unknown) {
    super(message, { cause });
    this.name = 'ImageError';
    this.kind = kind;
    this.imageName = imageName;
  }
}

function toRegistryAuth(image: ImageName, credentials: RegistryCredentials | undefined): RegistryAuth | undefined {
  if (!credentials) return undefined;
  const serveraddress = image.registry === DOCKER_HUB ? 'https://index.docker.io/v1/' : image.registry;
  return { username: credentials.username, password: credentials.password, serveraddress };
}

function failureMessage(kind: PullFailureKind, image: ImageName, detail: string, usedCredentials: boolean, attempts: number): string {
  const name = image.original;
  switch (kind) {
    case 'auth':
      return usedCredentials
        ? `Could not pull image ${name}: the registry ${image.registry} rejected the worker's credentials (${detail}). Ask the worker's operator to check the credentials configured for ${image.registry}.`
        : `Could not pull image ${name}: the registry ${image.registry} requires credentials (${detail}). The worker uses its registry credentials only for tasks with the scope ${imageScope(name)}, and only for registries it has credentials for.`;
    case 'not-found':
      return `Image ${name} was not found in the registry ${image.registry} (${detail}); check the image name and its tag or digest.`;
    case 'invalid':
      return `Docker refused to pull image ${name}: ${detail}.`;
    case 'engine':
      return detail;
    case 'transient':
      return `Could not pull image ${name} from ${image.registry} after ${attempts} attempt${attempts === 1 ? '' : 's'}: ${detail}.`;
  }
}

function parse(name: string): ImageName {
  try {
    return parseImageName(name);
  } catch (err) {
    throw new ImageError('invalid-name', String(name), err instanceof Error ? err.message : String(err), err);
  }
}

function repoDigestOf(image: ImageName, repoDigests: string[] | undefined): string | undefined {
  if (image.digest) return image.reference;
  return (repoDigests ?? []).find((d) => d.startsWith(`${image.localRepository}@`));
}

export async function ensureRegistryImage(engine: Engine, name: string, options: EnsureRegistryImageOptions = {}): Promise<EnsuredImage> {
  const image = parse(name);
  const emit: LineSink = options.onProgress ?? (() => {});
  const retries = Math.max(0, options.retries ?? 5);
  const baseDelayMs = Math.max(0, options.baseDelayMs ?? 1000);

  const local = await engine.inspectImage(image.reference);
  if (local && image.digest) {
    emit(`Using image ${image.reference}: pinned by digest and already present.`);
    return { image, imageId: local.Id, repoDigest: image.reference, source: 'local' };
  }

  const auth = toRegistryAuth(image, options.credentials);
  const attempts = local ? 1 : retries + 1;
  const detailOf = (err: unknown) => (err instanceof EngineError ? err.detail : String(err));
  let attempt = 0;
  try {
    await withRetries(async (n) => {
      attempt = n;
      options.signal?.throwIfAborted();
      emit(`Pulling image ${image.reference}${n > 1 ? ` (attempt ${n} of ${attempts})` : ''}`);
      const reporter = new PullProgressReporter(emit, { intervalMs: options.progressIntervalMs });
      await engine.pull(image.localRepository, image.digest ?? image.tag!, auth, (event) => reporter.onEvent(event), options.signal);
    }, {
      retries: attempts - 1, baseDelayMs, jitter: false, signal: options.signal,
      shouldRetry: (err) => !options.signal?.aborted && isRetryable(classifyPullFailure(err)),
      onRetry: (err, _n, delayMs) => emit(`Pull failed (${detailOf(err)}); retrying in ${(delayMs / 1000).toFixed(1)} s.`),
    });
  } catch (err) {
    options.signal?.throwIfAborted();
    const kind = classifyPullFailure(err);
    const detail = detailOf(err);
    if (isRetryable(kind) && local) {
      emit(`Warning: could not reach the registry ${image.registry} (${detail}); using the local copy of ${image.reference} (${local.Id.slice(0, 19)}), which may be out of date.`);
      return { image, imageId: local.Id, repoDigest: repoDigestOf(image, local.RepoDigests), source: 'local-fallback' };
    }
    throw new ImageError(kind, name, failureMessage(kind, image, detail, auth !== undefined, attempt), err);
  }

  const pulled = await engine.inspectImage(image.reference);
  if (!pulled) throw new ImageError('not-found', name, `Docker reported pulling image ${name} but does not have it afterwards; try again.`);
  return { image, imageId: pulled.Id, repoDigest: repoDigestOf(image, pulled.RepoDigests), source: 'registry' };
}
