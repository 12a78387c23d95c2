// The storage floor: the same bytes PUT straight to the deployment's object service with the
// root credentials (createUpload with putUrl -> one streamed HTTP PUT -> finishUpload), the
// way a client with nothing else to do would upload them.
import http from 'node:http';
import https from 'node:https';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import taskcluster from 'taskcluster-client';
import type { RootCredentials } from './worker-process.ts';

export interface PutTimes { bytes: number; putMs: number; totalMs: number }

export async function rawObjectPut(credentials: RootCredentials, filePath: string, contentType: string): Promise<PutTimes> {
  const t0 = performance.now();
  const { size } = await stat(filePath);
  const put = await objectPutUrl(credentials, contentType, size);
  const t1 = performance.now();
  await putBody(put.url, put.headers, createReadStream(filePath, { highWaterMark: 1024 * 1024 }));
  const t2 = performance.now();
  await put.finish();
  return { bytes: size, putMs: t2 - t1, totalMs: performance.now() - t0 };
}

/** A signed putUrl for a new object of `size` bytes, and the call that finishes it. */
export async function objectPutUrl(credentials: RootCredentials, contentType: string, size: number): Promise<{ url: string; headers: Record<string, string>; finish(sha256?: string): Promise<void> }> {
  const object = new taskcluster.Object({ rootUrl: credentials.rootUrl, credentials: { clientId: credentials.clientId, accessToken: credentials.accessToken } });
  const name = `bench/raw-put/${taskcluster.slugid()}`;
  const uploadId = taskcluster.slugid() as string;
  const projectId = 'none';
  const created = await object.createUpload(name, {
    projectId, uploadId, expires: taskcluster.fromNow('1 hour').toISOString(),
    proposedUploadMethods: { putUrl: { contentType, contentLength: size } },
  }) as { uploadMethod: { putUrl?: { url: string; headers: Record<string, string> } } };
  const put = created.uploadMethod.putUrl;
  if (!put) throw new Error('the object service offered no putUrl upload');
  return { ...put, finish: async (sha256?: string) => { await object.finishUpload(name, { projectId, uploadId, ...(sha256 ? { hashes: { sha256 } } : {}) }); } };
}

/** One PUT of a stream. */
export function putBody(url: string, headers: Record<string, string>, body: NodeJS.ReadableStream): Promise<void> {
  const target = new URL(url);
  const transport = target.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = transport.request(target, { method: 'PUT', headers });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        if ((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300) resolve();
        else reject(new Error(`PUT answered ${res.statusCode}: ${Buffer.concat(chunks).toString('utf8').slice(0, 300)}`));
      });
    });
    body.on('error', reject);
    body.pipe(req);
  });
}
