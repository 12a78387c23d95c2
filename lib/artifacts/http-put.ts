// One streamed HTTP PUT to a pre-signed URL (the queue's s3 putUrl, the object service's putUrl).
// The body is opened afresh for every attempt, so a retry re-sends it from the start. With
// `length`, a body that turns out shorter or longer than declared fails the PUT (the URL was
// signed for that Content-Length) instead of hanging or storing junk.
//
// A file is sent from two buffers used in turn, each read again only once the socket has
// taken what it held: a 1 GiB log costs 2 x 256 KiB, not a GiB of short-lived buffers that
// stay resident until the garbage collector gets to them.
import http from 'node:http';
import https from 'node:https';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { HttpStatusError } from '../retry/with-retries.ts';

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

const FILE_CHUNK = 256 * 1024;

/**
 * Writes the body to `req` and ends it, passing each chunk to `count` first (which throws when
 * the body is longer than declared); rejects (the PUT fails) on any error. `stopped` aborts when
 * the PUT has failed or been answered.
 */
type BodyWriter = (req: http.ClientRequest, count: (chunk: Buffer) => void, stopped: AbortSignal) => Promise<void>;

export function putFile(url: string, filePath: string, options: PutOptions): Promise<void> {
  return put(url, options, async (req, count, stopped) => {
    const file = await open(filePath, 'r');
    const gone = new Promise<void>((resolve) => stopped.addEventListener('abort', () => resolve(), { once: true }));
    try {
      const buffers = [Buffer.allocUnsafe(FILE_CHUNK), Buffer.allocUnsafe(FILE_CHUNK)];
      const written: Promise<void>[] = [Promise.resolve(), Promise.resolve()];
      let position = 0;
      for (let turn = 0; ; turn ^= 1) {
        await Promise.race([written[turn], gone]); // the socket has taken this buffer's previous contents
        if (stopped.aborted) return;
        const { bytesRead } = await file.read(buffers[turn]!, 0, FILE_CHUNK, position);
        if (bytesRead === 0) break;
        position += bytesRead;
        const chunk = buffers[turn]!.subarray(0, bytesRead);
        count(chunk);
        written[turn] = new Promise<void>((resolve, reject) => req.write(chunk, (err) => (err ? reject(err) : resolve())));
        written[turn]!.catch(() => undefined);
      }
      await Promise.race([Promise.all(written), gone]);
      if (!stopped.aborted) req.end();
    } finally {
      await file.close();
    }
  });
}

export function putStream(url: string, source: Readable, options: PutOptions): Promise<void> {
  return put(url, options, (req, count) => new Promise<void>((resolve, reject) => {
    source.on('data', (chunk: Buffer) => { try { count(chunk); } catch (err) { reject(err); } });
    source.once('error', reject);
    source.once('end', () => { req.end(); resolve(); });
    source.pipe(req, { end: false });
  }), () => source.destroy());
}

function put(url: string, options: PutOptions, writeBody: BodyWriter, abandon: () => void = () => undefined): Promise<void> {
  const target = new URL(url);
  const transport = target.protocol === 'https:' ? https : http;
  return new Promise<void>((resolve, reject) => {
    const req = transport.request(target, { method: 'PUT', headers: options.headers });
    let settled = false;
    const stopped = new AbortController();
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      stopped.abort();
      abandon(); req.destroy(); reject(err);
    };
    let sent = 0;
    const expected = options.length;
    const count = (chunk: Buffer) => {
      sent += chunk.length;
      if (expected !== undefined && sent > expected) throw new BodyLengthError(expected, sent);
      options.onData?.(chunk);
    };
    writeBody(req, count, stopped.signal).then(() => {
      if (expected !== undefined && sent !== expected) fail(new BodyLengthError(expected, sent));
    }, (err: Error) => fail(err));
    req.setTimeout(options.idleTimeoutMs ?? 5 * 60_000, () => fail(new Error(`no progress uploading to ${target.host} for too long`)));
    req.on('error', fail);
    req.on('response', (res) => {
      const body: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => { if (size < 4096) { body.push(c); size += c.length; } });
      res.on('error', fail);
      res.on('end', () => {
        if (settled) return;
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) { settled = true; stopped.abort(); return resolve(); }
        const detail = Buffer.concat(body).toString('utf8').slice(0, 500).trim();
        fail(new HttpStatusError(status, `PUT to ${target.host} answered ${status}${detail ? `: ${detail}` : ''}`));
      });
    });
  });
}
