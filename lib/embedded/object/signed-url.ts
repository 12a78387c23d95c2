// Signed blob URLs, the embedded stand-in for S3 pre-signed URLs. A URL grants one method
// (GET or PUT) on one blob key until it expires; a PUT URL also fixes the Content-Type,
// optionally the Content-Length, whether a Content-Encoding may be sent, and how long the
// stored blob is kept. Everything is covered by an HMAC with the deployment's urlSecret.
import crypto from 'node:crypto';

export const BLOB_PATH_PREFIX = '/_object/blob/';

export interface BlobGrant {
  method: 'GET' | 'PUT';
  key: string;
  /** When the URL stops working (ms since the epoch). */
  expires: number;
  /** PUT: the Content-Type the request must carry. */
  contentType?: string;
  /** PUT: the exact Content-Length the request must carry. */
  contentLength?: number;
  /** PUT: only `identity` (or no) Content-Encoding is accepted. */
  identityOnly?: boolean;
  /** PUT: how long the stored blob is kept (ms since the epoch). */
  keep?: number;
}

export class InvalidSignedUrl extends Error {}

function canonical(g: BlobGrant): string {
  return ['blob-v1', g.method, g.key, g.expires, g.contentType ?? '', g.contentLength ?? '',
    g.identityOnly ? 'identity' : '', g.keep ?? ''].join('\n');
}

function mac(secret: string, g: BlobGrant): string {
  return crypto.createHmac('sha256', secret).update(canonical(g)).digest('base64url');
}

export function signBlobUrl(rootUrl: string, secret: string, grant: BlobGrant): string {
  const url = new URL(`${BLOB_PATH_PREFIX}${encodeURIComponent(grant.key)}`, rootUrl);
  url.searchParams.set('method', grant.method);
  url.searchParams.set('expires', String(grant.expires));
  if (grant.contentType !== undefined) url.searchParams.set('contentType', grant.contentType);
  if (grant.contentLength !== undefined) url.searchParams.set('contentLength', String(grant.contentLength));
  if (grant.identityOnly) url.searchParams.set('contentEncoding', 'identity');
  if (grant.keep !== undefined) url.searchParams.set('keep', String(grant.keep));
  url.searchParams.set('signature', mac(secret, grant));
  return url.toString();
}

const intParam = (url: URL, name: string): number | undefined => {
  const v = url.searchParams.get(name);
  if (v === null) return undefined;
  if (!/^\d{1,16}$/.test(v)) throw new InvalidSignedUrl(`the ${name} parameter of this URL is malformed`);
  return Number(v);
};

/** Reads and checks the grant a URL carries; throws InvalidSignedUrl with a readable reason. */
export function verifyBlobUrl(secret: string, url: URL, now = Date.now()): BlobGrant {
  let key: string;
  try {
    key = decodeURIComponent(url.pathname.slice(BLOB_PATH_PREFIX.length));
  } catch {
    throw new InvalidSignedUrl('the blob name in this URL is not valid URL encoding');
  }
  const method = url.searchParams.get('method');
  if (method !== 'GET' && method !== 'PUT') throw new InvalidSignedUrl('this URL is not a signed blob URL (no method)');
  const expires = intParam(url, 'expires');
  if (expires === undefined) throw new InvalidSignedUrl('this URL is not a signed blob URL (no expiry)');
  const grant: BlobGrant = {
    method, key, expires,
    contentType: url.searchParams.get('contentType') ?? undefined,
    contentLength: intParam(url, 'contentLength'),
    identityOnly: url.searchParams.get('contentEncoding') === 'identity',
    keep: intParam(url, 'keep'),
  };
  const given = Buffer.from(url.searchParams.get('signature') ?? '');
  const expected = Buffer.from(mac(secret, grant));
  if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) {
    throw new InvalidSignedUrl('the signature of this URL does not match; it was altered or was not issued by this deployment');
  }
  if (expires < now) throw new InvalidSignedUrl(`this signed URL expired at ${new Date(expires).toISOString()}; ask for a new one`);
  return grant;
}
