// Stage 3 (image): make the planned image present and return the id to run. All three kinds —
// registry names, task-image and indexed-image artifacts — go through the worker's one
// ImageStore (lib/images/image-store.ts), which shares concurrent pulls and downloads and
// remembers loaded artifacts. Progress goes to the task log.
import type { Credentials } from '../queue/taskcluster.ts';
import type { TaskLog } from '../log/task-log.ts';
import { ImageFailure } from '../images/errors.ts';
import { unreachableEngine } from '../docker/engine-error.ts';
import type { ArtifactHash, ImageStore } from '../images/image-store.ts';
import type { ScopeSet } from '../scopes/task-scopes.ts';
import type { ImageRef } from './types.ts';

export type { ArtifactHash, ImageStore };

export interface ImageRequest {
  taskId: string;
  /**
   * The run's scopes: roles count for what the image needs (queue:get-artifact:<path> for a
   * private image artifact, docker-worker:image:<name> for the worker's registry credentials).
   */
  scopes: ScopeSet;
  /** The run's current temporary credentials (they change after each reclaim). */
  credentials: () => Credentials;
}

export interface PreparedImage {
  imageId: string;
  description: string;
  /**
   * `sha256:<hex>` of the image artifact's bytes (task-image / indexed-image; undefined for a
   * registry image), the same whether it was downloaded now or remembered from an earlier
   * task. Kept on the run for chain of trust (the certificate's `imageArtifactHash`).
   */
  artifactHash: ArtifactHash | undefined;
  /** Ends the task's lease on the image (the garbage collector keeps leased images). */
  release(): void;
}

/** An image that cannot be had: the task fails with this message (docker-worker did the same). */
export class ImageUnavailable extends Error {}

export async function prepareImage(
  images: ImageStore, image: ImageRef, request: ImageRequest, taskLog: TaskLog, signal: AbortSignal,
): Promise<PreparedImage> {
  try {
    const ensured = await images.ensure(image, {
      taskId: request.taskId, scopes: request.scopes, credentials: request.credentials, taskLog, signal,
    });
    return { imageId: ensured.imageId, description: ensured.description, artifactHash: ensured.artifactHash, release: ensured.release };
  } catch (err) {
    // An engine that does not answer is not the image's fault: the run resolves it as the host's.
    const away = unreachableEngine(err);
    if (away) throw away;
    if (err instanceof ImageFailure) throw new ImageUnavailable(err.message, { cause: err });
    throw err;
  }
}
