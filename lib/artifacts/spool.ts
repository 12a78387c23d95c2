// Streams an artifact to its upload and, at the same time, to a temp file (the copy a retry
// re-sends), hashing it on the way: one pass over the bytes instead of extract, hash, upload.
// If the upload gives up early the spool goes on filling the file, so a retry always has the
// whole artifact.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import { PassThrough, type Readable } from 'node:stream';

export interface Spooled { sha256: string; size: number }

export class Spool {
  readonly body = new PassThrough({ highWaterMark: 1 << 20 });
  /** Resolves once every byte is in the file (and hashed); rejects when the source fails. */
  readonly done: Promise<Spooled>;

  constructor(source: Readable, filePath: string) {
    this.done = this.run(source, filePath);
    this.done.catch(() => undefined);
  }

  private async run(source: Readable, filePath: string): Promise<Spooled> {
    const file = createWriteStream(filePath, { highWaterMark: 1 << 20 });
    const hash = createHash('sha256');
    const body = this.body;
    let size = 0;
    const bodyOpen = () => !body.destroyed && !body.writableEnded;
    try {
      for await (const chunk of source as AsyncIterable<Buffer>) {
        hash.update(chunk);
        size += chunk.length;
        const fileOk = file.write(chunk);
        const bodyOk = bodyOpen() ? body.write(chunk) : true;
        if (!fileOk) await once(file, 'drain');
        if (!bodyOk && bodyOpen()) await Promise.race([once(body, 'drain'), once(body, 'close')]);
      }
      if (bodyOpen()) body.end();
      file.end();
      await finished(file);
      return { sha256: hash.digest('hex'), size };
    } catch (err) {
      body.destroy(err as Error);
      file.destroy();
      throw err;
    }
  }
}
