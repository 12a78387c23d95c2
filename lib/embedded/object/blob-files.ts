// Blob bytes on disk. Data is streamed into a temporary file while its size and sha256 are
// computed, then renamed into place: a reader never sees a half-written blob and nothing is
// ever held whole in memory. sha512 (three times the CPU of sha256 here) is computed from the
// file only when someone declares one to check (digest()).
import crypto from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { rename, unlink, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export interface WrittenBlob {
  /** File name relative to the blob directory. */
  file: string;
  size: number;
  sha256: string;
}

/** Thrown when the body is not the declared length; the caller answers 400. */
export class LengthMismatch extends Error {
  readonly expected: number;
  readonly received: number;
  constructor(expected: number, received: number) {
    super(`received ${received} bytes but Content-Length declared ${expected}`);
    this.expected = expected; this.received = received;
  }
}

class HashingCounter extends Transform {
  constructor() { super({ highWaterMark: 1 << 20 }); }
  readonly sha256 = crypto.createHash('sha256');
  size = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null, data?: Buffer) => void): void {
    this.sha256.update(chunk);
    this.size += chunk.length;
    cb(null, chunk);
  }
}

export class BlobFiles {
  readonly dir: string;
  private readonly tmpDir: string;

  constructor(dir: string) {
    this.dir = dir;
    this.tmpDir = path.join(dir, 'tmp');
    mkdirSync(this.tmpDir, { recursive: true, mode: 0o700 });
    // Leftovers of writes interrupted by a previous shutdown.
    for (const f of readdirSync(this.tmpDir)) rmSync(path.join(this.tmpDir, f), { force: true });
  }

  /** Streams `source` to a new file; with expectedLength, a short or long body is rejected. */
  async write(source: Readable, expectedLength?: number): Promise<WrittenBlob> {
    const id = crypto.randomBytes(16).toString('hex');
    const tmp = path.join(this.tmpDir, id);
    const counter = new HashingCounter();
    try {
      // Large buffers: chunks that arrive while a write is under way go out together in one writev.
      await pipeline(source, counter, createWriteStream(tmp, { mode: 0o600, highWaterMark: 1 << 20 }));
      if (expectedLength !== undefined && counter.size !== expectedLength) throw new LengthMismatch(expectedLength, counter.size);
      const file = path.join(id.slice(0, 2), id);
      await mkdir(path.join(this.dir, id.slice(0, 2)), { recursive: true, mode: 0o700 });
      await rename(tmp, path.join(this.dir, file));
      return { file, size: counter.size, sha256: counter.sha256.digest('hex') };
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw err;
    }
  }

  /** Hex digest of a stored file, read from disk. */
  async digest(file: string, algorithm: 'sha256' | 'sha512'): Promise<string> {
    const hash = crypto.createHash(algorithm);
    for await (const chunk of createReadStream(this.resolve(file), { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
    return hash.digest('hex');
  }

  open(file: string): Readable {
    return createReadStream(this.resolve(file), { highWaterMark: 1 << 20 }); // large reads: fewer socket writes per byte served
  }

  async remove(file: string): Promise<void> {
    await unlink(this.resolve(file)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }

  private resolve(file: string): string {
    const full = path.resolve(this.dir, file);
    if (!full.startsWith(path.resolve(this.dir) + path.sep)) throw new Error(`blob file ${file} is outside ${this.dir}`);
    return full;
  }
}
