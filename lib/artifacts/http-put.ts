// One streamed HTTP PUT of a file to a pre-signed URL (the queue's s3 putUrl). The file is
// opened afresh for every attempt, so a retry re-sends it from the start.
import http from 'node:http';
import https from 'node:https';
import { createReadStream } from 'node:fs';
import { HttpStatusError } from './retry.ts';

export interface PutOptions {
  headers: Record<string, string | number>;
  /** Gives up on a stalled connection after this long without progress (default 5 min). */
  idleTimeoutMs?: number;
}

export function putFile(url: string, filePath: string, options: PutOptions): Promise<void> {
  const target = new URL(url);
  const transport = target.protocol === 'https:' ? https : http;
  return new Promise<void>((resolve, reject) => {
    const source = createReadStream(filePath, { highWaterMark: 1024 * 1024 });
    const req = transport.request(target, { method: 'PUT', headers: options.headers });
    const fail = (err: Error) => { source.destroy(); req.destroy(); reject(err); };
    req.setTimeout(options.idleTimeoutMs ?? 5 * 60_000, () => fail(new Error(`no progress uploading to ${target.host} for too long`)));
    req.on('error', fail);
    source.on('error', fail);
    req.on('response', (res) => {
      const body: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => { if (size < 4096) { body.push(c); size += c.length; } });
      res.on('error', fail);
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) return resolve();
        source.destroy();
        const detail = Buffer.concat(body).toString('utf8').slice(0, 500).trim();
        reject(new HttpStatusError(status, `PUT to ${target.host} answered ${status}${detail ? `: ${detail}` : ''}`));
      });
    });
    source.pipe(req);
  });
}
