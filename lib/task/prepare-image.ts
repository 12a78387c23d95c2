// Stage 3 (image): make the planned image present and return the id to run. Registry images
// are pulled with the worker's registry credentials only when the task holds
// docker-worker:image:<name>. Progress goes to the task log.
import type { Engine } from '../docker/engine.ts';
import { ensureRegistryImage, ImageError } from '../docker/registry-image.ts';
import { registryCredentialsFor, mayUseCredentials, type RegistryCredentialsConfig } from '../docker/registry-credentials.ts';
import type { TaskLog } from '../log/task-log.ts';
import type { ImageRef } from './types.ts';

export interface ImageSettings {
  registries: RegistryCredentialsConfig;
  pullRetries: number;
  pullBaseDelayMs: number;
}

export interface PreparedImage { imageId: string; description: string }

/** An image that cannot be had: the task fails with this message (docker-worker did the same). */
export class ImageUnavailable extends Error {}

export async function prepareImage(
  engine: Engine, image: ImageRef, scopes: string[], settings: ImageSettings, taskLog: TaskLog, signal: AbortSignal,
): Promise<PreparedImage> {
  if (image.kind !== 'registry') {
    throw new ImageUnavailable(`Image type "${image.kind}" is not supported by this worker build yet; use a registry image name.`);
  }
  const available = registryCredentialsFor(image.name, settings.registries);
  const allowed = available !== undefined && mayUseCredentials(scopes, image.name);
  try {
    const ensured = await ensureRegistryImage(engine, image.name, {
      credentials: allowed ? available : undefined,
      retries: settings.pullRetries,
      baseDelayMs: settings.pullBaseDelayMs,
      onProgress: (line) => taskLog.info(line),
      signal,
    });
    return { imageId: ensured.imageId, description: ensured.repoDigest ?? image.name };
  } catch (err) {
    if (err instanceof ImageError) {
      const hint = available && !allowed && err.kind === 'auth'
        ? ` This worker has credentials for ${available.registry}, but the task lacks the scope docker-worker:image:${image.name} needed to use them.`
        : '';
      throw new ImageUnavailable(err.message + hint, { cause: err });
    }
    throw err;
  }
}
