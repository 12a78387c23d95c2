// dockerSave (docker-worker's `docker_save`, off by default, no scope, as there): once the
// task's command has exited, the worker commits the task container as an image and uploads
// `docker save` of it as `public/dockerImage.tar`, and each of the task's caches as
// `public/cache/<name>.tar`; both expire after min(7 days, the task's expiry).
//
// Nothing is written to disk or held in memory: the object service signs its PUT URL for a
// Content-Length, and neither the engine nor a cache can say how long its tar will be, so each
// tar is read twice from the engine: once to count its bytes (thrown away as they arrive), once
// into the upload (a retry reads it a third time). `docker save` of an image and the archive of
// a stopped container's directory are the same bytes each time; if they ever were not, the PUT
// fails on the length and the run reports it. On the wire the tar is sent as it is
// (`identity`): object artifacts carry no Content-Encoding (docker-worker's s3 uploads were
// gzip-encoded, which clients undid transparently; they receive the same tar here). With the
// legacy `s3` storage the publisher spools the tar to the worker's tmp dir and gzip-encodes it,
// as docker-worker did.
//
// The committed image is labelled as the worker's (and LABEL_COMMITTED_IMAGE) from the moment it
// exists, removed right after its upload, again in cleanup on every path, and by the startup
// sweep if the worker died in between.
import type { Readable } from 'node:stream';
import { LABEL_COMMITTED_IMAGE } from '../docker/labels.ts';
import type { Feature, FeatureRunContext } from './feature.ts';

export const DOCKER_IMAGE_ARTIFACT = 'public/dockerImage.tar';
export const SAVED_ARTIFACT_DAYS = 7;

export interface DockerSaveOptions {
  imageArtifact: string;
  caches: Array<{ name: string; mountPoint: string; artifact: string }>;
}

export function cacheArtifactName(cacheName: string): string {
  return `public/cache/${cacheName}.tar`;
}

/** docker-worker's name for the committed image: a repository must be lower case, without `_`. */
export function committedImageName(taskId: string, runId: number): string {
  return `${taskId.toLowerCase().replace(/[_-]/g, '0')}-${runId}`;
}

/** min(now + 7 days, the task's expiry). */
export function savedArtifactExpiry(now: Date, taskExpires: string): Date {
  return new Date(Math.min(now.getTime() + SAVED_ARTIFACT_DAYS * 86_400_000, new Date(taskExpires).getTime()));
}

/** The number of bytes a stream carries, read to its end and dropped. */
export async function countBytes(stream: Readable): Promise<number> {
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) size += chunk.length;
  return size;
}

type SaveContext = FeatureRunContext & { options: DockerSaveOptions };

/** Uploads a tar the engine produces the same each time `open` is called, without storing it. */
async function uploadTar(ctx: SaveContext, name: string, open: () => Promise<Readable>, expires: Date): Promise<number> {
  const size = await countBytes(await open());
  const uploaded = await ctx.publisher.uploadStream(open, size, { name, expires, contentType: 'application/x-tar' });
  return uploaded.size;
}

/**
 * The task image's own entrypoint (`[""]`: none) and the container's command, when a feature
 * wrapped the command in an entrypoint of its own (the interactive hold): the saved image must
 * not start a wrapper that only existed on this worker. Undefined when the container kept its
 * image's entrypoint.
 */
async function restoredStart(ctx: SaveContext, containerId: string): Promise<{ entrypoint: string[]; cmd?: string[] } | undefined> {
  if (!ctx.plan.create.Entrypoint) return undefined;
  const container = await ctx.engine.inspectContainer(containerId);
  const image = await ctx.engine.inspectImage(container.Image);
  const own = image?.Config?.Entrypoint;
  const entrypoint = typeof own === 'string' ? [own] : own?.length ? own : [''];
  const cmd = container.Config.Cmd;
  return { entrypoint, ...(cmd?.length ? { cmd: typeof cmd === 'string' ? [cmd] : cmd } : {}) };
}

export const dockerSave: Feature<DockerSaveOptions> = {
  name: 'dockerSave',
  defaultEnabled: false,
  plan: ({ payload }) => {
    const caches = Object.entries(payload.cache ?? {}).map(([name, mountPoint]) => ({ name, mountPoint, artifact: cacheArtifactName(name) }));
    return {
      options: { imageArtifact: DOCKER_IMAGE_ARTIFACT, caches },
      reservedArtifacts: [DOCKER_IMAGE_ARTIFACT, ...caches.map((c) => c.artifact)],
    };
  },
  forTask: (ctx) => {
    let committed: string | undefined;
    const removeCommitted = async () => {
      if (!committed) return;
      await ctx.engine.removeImage(committed, { force: true });
      committed = undefined;
    };
    return {
      async afterExit(exit) {
        if (exit.interrupted) return; // cancelled or shut down: nothing but the task log is uploaded
        const expires = savedArtifactExpiry(new Date(), ctx.plan.taskExpires);
        const repository = committedImageName(ctx.taskId, ctx.runId);
        try {
          ctx.taskLog.info(`dockerSave: committing the container as ${repository}:latest and uploading it as ${ctx.options.imageArtifact}`);
          committed = await ctx.engine.commitContainer(exit.containerId, repository, 'latest', {
            workerId: ctx.worker.workerId, taskId: ctx.taskId, runId: ctx.runId, extra: { [LABEL_COMMITTED_IMAGE]: 'true' },
          }, await restoredStart(ctx, exit.containerId));
          // Saved by name, so that `docker load` of the artifact names the image as docker-worker's did.
          const size = await uploadTar(ctx, ctx.options.imageArtifact, () => ctx.engine.saveImage(`${repository}:latest`), expires);
          ctx.taskLog.info(`dockerSave: uploaded ${ctx.options.imageArtifact} (${size} bytes); load it with \`docker load\``);
          await removeCommitted();
          for (const cache of ctx.options.caches) {
            const cacheSize = await uploadTar(ctx, cache.artifact, () => ctx.engine.getArchive(exit.containerId, `${cache.mountPoint.replace(/\/+$/, '')}/.`), expires);
            ctx.taskLog.info(`dockerSave: uploaded cache ${cache.name} as ${cache.artifact} (${cacheSize} bytes)`);
          }
          ctx.mark('dockerSaved');
        } catch (err) {
          ctx.taskLog.error(`dockerSave: the container could not be saved: ${(err as Error).message}`);
          throw err;
        }
      },
      async cleanup() {
        await removeCommitted().catch((err: Error) =>
          ctx.log.error('could not remove the committed image', { taskId: ctx.taskId, runId: ctx.runId, image: committed, error: err.message }));
      },
    };
  },
};
