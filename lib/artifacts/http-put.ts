// One streamed HTTP PUT to a pre-signed URL (the queue's s3 putUrl, the object service's putUrl).
// The body comes from a stream opened by the caller for each attempt, so a retry re-sends it
// from the start. With `length`, a body that turns out shorter or longer than declared fails
// the PUT (the URL was signed for that Content-Length) instead of hanging or storing junk.
import http from 'node:http';
import https from 'node:https';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { HttpStatusError } from './retry.ts';

export interface PutOptions {
  headers: Record<string, string | number>;
  /** Gives up on a stalled connection after this long without progress (default 5 min). */
  idleTimeoutMs?: number;
  /** The exact number of bytes the body must have. */
  length?: number;
  /** Sees every chunk of the body on its way out (e.g. to hash it). */
  onData?: (chunk: Buffer) => void;
}

/** A body that was not the length declared for it. */
export class BodyLengthError extends Error {
  /** Sending the same data again cannot help. */
  readonly retriable = false;
  constructor(expected: number, actual: number) {
    super(`the data was ${actual > expected ? 'longer' : 'shorter'} than the ${expected} bytes declared for it (${actual > expected ? 'at least ' : ''}${actual} bytes): it changed while it was read`);
    this.name = 'BodyLengthError';
  }
}

export function putFile(url: string, filePath: string, options: PutOptions): Promise<void> {
  return putStream(url, createReadStream(filePath, { highWaterMark: 1024 * 1024 }), options);
}

export function putStream(url: string, source: Readable, options: PutOptions): Promise<void> {
  const target = new URL(url);
  const transport = target.protocol === 'https:' ? https : http;
  return new Promise<void>((resolve, reject) => {
    const req = transport.request(target, { method: 'PUT', headers: options.headers });
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      source.destroy(); req.destroy(); reject(err);
    };
    let sent = 0;
    const expected = options.length;
    source.on('data', (chunk: Buffer) => {
      sent += chunk.length;
      if (expected !== undefined && sent > expected) return fail(new BodyLengthError(expected, sent));
      options.onData?.(chunk);
    });
    source.on('end', () => {
      if (expected !== undefined && sent !== expected) fail(new BodyLengthError(expected, sent));
    });
    req.setTimeout(options.idleTimeoutMs ?? 5 * 60_000, () => fail(new Error(`no progress uploading to ${target.host} for too long`)));
    req.on('error', fail);
    source.on('error', fail);
    req.on('response', (res) => {
      const body: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => { if (size < 4096) { body.push(c); size += c.length; } });
      res.on('error', fail);
      res.on('end', () => {
        if (settled) return;
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) { settled = true; return resolve(); }
        const detail = Buffer.concat(body).toString('utf8').slice(0, 500).trim();
        fail(new HttpStatusError(status, `PUT to ${target.host} answered ${status}${detail ? `: ${detail}` : ''}`));
      });
    });
    source.pipe(req);
  });
}
