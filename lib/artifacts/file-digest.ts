// One streaming pass over a file: its sha256 and size, and optionally a gzip copy of it.
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { createGzip } from 'node:zlib';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export interface FileDigest {
  /** sha256 of the file's own bytes, hex. */
  sha256: string;
  size: number;
  /** Size of the gzip copy, when one was asked for. */
  gzipSize?: number;
}

export async function digestFile(filePath: string, gzipTo?: string): Promise<FileDigest> {
  const hash = createHash('sha256');
  let size = 0;
  const tap = new PassThrough({
    transform(chunk: Buffer, _enc, done) { hash.update(chunk); size += chunk.length; done(null, chunk); },
  });
  const source = createReadStream(filePath, { highWaterMark: 1024 * 1024 });
  if (gzipTo) {
    await pipeline(source, tap, createGzip({ level: 6 }), createWriteStream(gzipTo));
    return { sha256: hash.digest('hex'), size, gzipSize: (await stat(gzipTo)).size };
  }
  await pipeline(source, tap, async (data: AsyncIterable<Buffer>) => { for await (const _ of data) { /* drain */ } });
  return { sha256: hash.digest('hex'), size };
}
