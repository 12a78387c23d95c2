// The object service: createUpload (methods dataInline and putUrl), finishUpload with hash
// verification, startDownload (getUrl and simple), object metadata and download redirects.
// Data moves through signed blob URLs served by this module's raw handler.
import type { EmbeddedContext, ServiceParts } from '../context.ts';
import type { Handler } from '../api/service.ts';
import { Reply } from '../api/service.ts';
import { inputError } from '../api/errors.ts';
import { objectStoreFor, type Hashes } from './object-store.ts';
import { blobEndpoint } from './blob-endpoint.ts';
import { BLOB_PATH_PREFIX } from './signed-url.ts';

// Object names are printable ASCII, including space (as the real service requires).
const NAME_PATTERN = /^[\x20-\x7e]+$/;
/** getUrl: the caller should start within a minute; the URL itself allows another minute. */
const GET_URL_SECONDS = 60;
/** simple: as long as the queue's signed artifact URLs. */
const SIMPLE_URL_SECONDS = 30 * 60;

interface CreateUploadBody {
  projectId: string; uploadId: string; expires: string; hashes?: Hashes;
  proposedUploadMethods: {
    dataInline?: { contentType: string; objectData: string };
    putUrl?: { contentType: string; contentLength: number };
  };
}

function checkName(name: string): void {
  if (!NAME_PATTERN.test(name)) throw inputError(`Object name ${JSON.stringify(name)} must be printable ASCII (0x20-0x7e)`);
}

export function objectService(ctx: EmbeddedContext): ServiceParts {
  const objects = objectStoreFor(ctx);

  const handlers: Record<string, Handler> = {
    async createUpload(req) {
      const body = req.body as CreateUploadBody;
      const { name } = req.params;
      req.authorize({ projectId: body.projectId, name });
      checkName(name);
      const expires = new Date(body.expires);
      objects.beginUpload(name, { projectId: body.projectId, uploadId: body.uploadId, expires, hashes: body.hashes });
      const proposed = body.proposedUploadMethods;
      let uploadMethod: Record<string, unknown> = {};
      if (proposed.dataInline) {
        await objects.storeInline(name, proposed.dataInline.contentType, proposed.dataInline.objectData);
        uploadMethod = { dataInline: true };
      } else if (proposed.putUrl) {
        if (proposed.putUrl.contentLength < 0) throw inputError('putUrl.contentLength must not be negative');
        uploadMethod = { putUrl: objects.putUrl(name, proposed.putUrl.contentType, proposed.putUrl.contentLength) };
      }
      return { projectId: body.projectId, uploadId: body.uploadId, expires: expires.toISOString(), uploadMethod };
    },

    async finishUpload(req) {
      const { projectId, uploadId, hashes } = req.body as { projectId: string; uploadId: string; hashes?: Hashes };
      req.authorize({ projectId });
      await objects.finishUpload(req.params.name, projectId, uploadId, hashes);
      return {};
    },

    startDownload(req) {
      const { name } = req.params;
      const accepted = (req.body as { acceptDownloadMethods: Record<string, unknown> }).acceptDownloadMethods;
      const object = objects.readable(name);
      if (accepted.getUrl) {
        const { url } = objects.downloadUrl(name, 2 * GET_URL_SECONDS);
        const expires = new Date(Date.now() + GET_URL_SECONDS * 1000).toISOString();
        return { method: 'getUrl', url, expires, hashes: object.hashes };
      }
      if (accepted.simple) {
        return { method: 'simple', url: objects.downloadUrl(name, SIMPLE_URL_SECONDS).url };
      }
      return new Reply(406, {
        code: 'NoMatchingMethod',
        message: 'Object supports methods getUrl, simple; none of them was accepted',
        requestInfo: { method: req.raw.method, path: req.raw.url, time: new Date().toISOString() },
      });
    },

    object(req) {
      const object = objects.readable(req.params.name);
      return { projectId: object.projectId, expires: new Date(object.expires).toISOString(), hashes: object.hashes };
    },

    download(req) {
      objects.readable(req.params.name);
      const { url } = objects.downloadUrl(req.params.name, SIMPLE_URL_SECONDS);
      return new Reply(303, { url }, { location: url });
    },
  };

  return {
    handlers,
    raw: { [BLOB_PATH_PREFIX]: blobEndpoint(ctx) },
    async sweep() {
      await objects.sweep();
      await objects.blobs.sweep();
    },
  };
}
