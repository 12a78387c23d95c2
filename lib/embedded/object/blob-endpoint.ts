// The HTTP side of signed blob URLs (`/_object/blob/<key>?...`): a PUT stores the request
// body as it streams in, a GET or HEAD serves it back with the Content-Type and
// Content-Encoding it was stored with — what a pre-signed S3 URL does.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { send, Reply } from '../api/service.ts';
import type { EmbeddedContext, RawHandler } from '../context.ts';
import { blobStoreFor, BlobSealed, type BlobStore } from './blob-store.ts';
import { LengthMismatch } from './blob-files.ts';
import { verifyBlobUrl, InvalidSignedUrl, type BlobGrant } from './signed-url.ts';

const error = (status: number, code: string, message: string, headers: Record<string, string> = {}) =>
  new Reply(status, { code, message }, headers);

/** Error replies sent before the request body was read also close the connection. */
const reject = (status: number, code: string, message: string) => error(status, code, message, { connection: 'close' });

function isHtml(contentType: string): boolean {
  return /^\s*text\/html\s*(;|$)/i.test(contentType);
}

async function serve(blobs: BlobStore, grant: BlobGrant, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const record = blobs.get(grant.key);
  if (!record || record.expires < Date.now()) {
    send(res, error(404, 'ResourceNotFound', 'No data has been uploaded under this URL (or it has expired)'));
    return;
  }
  const headers: Record<string, string | number> = {
    'content-type': record.contentType,
    'content-length': record.size,
    'etag': `"${record.sha256}"`,
    'cache-control': 'private, max-age=0',
  };
  if (record.contentEncoding) headers['content-encoding'] = record.contentEncoding;
  // Like the real object service: HTML is downloaded, never rendered on our origin.
  if (isHtml(record.contentType)) headers['content-disposition'] = 'attachment';
  res.writeHead(200, headers);
  if (req.method === 'HEAD') { res.end(); return; }
  try {
    await pipeline(blobs.open(record), res);
  } catch {
    res.destroy();
  }
}

async function store(blobs: BlobStore, grant: BlobGrant, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const contentType = req.headers['content-type'] ?? '';
  if (grant.contentType !== undefined && contentType !== grant.contentType) {
    send(res, reject(403, 'SignatureDoesNotMatch',
      `This upload URL was signed for Content-Type ${JSON.stringify(grant.contentType)}, but the request sent ${JSON.stringify(contentType)}; send exactly the Content-Type you declared`));
    return;
  }
  const lengthHeader = req.headers['content-length'];
  const declaredLength = lengthHeader !== undefined && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : undefined;
  if (grant.contentLength !== undefined && declaredLength !== grant.contentLength) {
    send(res, reject(403, 'SignatureDoesNotMatch',
      `This upload URL was signed for Content-Length ${grant.contentLength}, but the request sent ${lengthHeader ?? 'none'}; send exactly the declared number of bytes with a Content-Length header`));
    return;
  }
  const encoding = req.headers['content-encoding'];
  if (grant.identityOnly && encoding !== undefined && encoding !== 'identity') {
    send(res, reject(400, 'InvalidRequest',
      `Objects are stored as sent and must not be content-encoded (the upload headers say Content-Encoding: identity), but the request sent Content-Encoding: ${encoding}`));
    return;
  }
  try {
    const record = await blobs.put(grant.key, req, {
      contentType,
      contentEncoding: encoding && encoding !== 'identity' ? encoding : undefined,
      expectedLength: declaredLength,
      expires: grant.keep ?? grant.expires,
    });
    send(res, new Reply(200, undefined, { etag: `"${record.sha256}"` }));
  } catch (err) {
    if (err instanceof BlobSealed) send(res, reject(409, 'RequestConflict', 'This upload is already finished; its data cannot be replaced'));
    else if (err instanceof LengthMismatch) send(res, error(400, 'IncompleteBody', `The upload was not stored: ${err.message}`));
    else if (req.destroyed || req.readableAborted) res.destroy();
    else throw err;
  }
}

export function blobEndpoint(ctx: EmbeddedContext): RawHandler {
  const blobs = blobStoreFor(ctx);
  return async (req, res, url) => {
    let grant: BlobGrant;
    try {
      grant = verifyBlobUrl(ctx.urlSecret, url);
    } catch (err) {
      if (!(err instanceof InvalidSignedUrl)) throw err;
      send(res, reject(403, 'AccessDenied', `Access denied: ${err.message}`));
      return;
    }
    const method = req.method ?? 'GET';
    const wanted = method === 'HEAD' ? 'GET' : method;
    if (wanted !== grant.method) {
      send(res, reject(403, 'AccessDenied', `Access denied: this URL was signed for ${grant.method}, not ${method}`));
      return;
    }
    if (grant.method === 'GET') await serve(blobs, grant, req, res);
    else await store(blobs, grant, req, res);
  };
}
