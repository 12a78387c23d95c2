// The task log: one writable sink for everything a task owner reads (worker lines and the
// container's output). Bytes are masked for secrets and written straight to a plain file on
// disk, the backing log. Nothing is kept in memory: live readers (live-log-server.ts) read the
// file, following the `grow` event, and the backing log artifact is uploaded from it at the end.
//
// Lifetime of the file: the creator holds one reference; anything that still needs the file
// after the task (the live log server during its grace period) takes another with retain().
// The file is removed when the last reference is released. A complete log costs nothing but its
// file: its buffers, its write handle and its masker go the moment it is complete, since a
// finished task's log may be served for minutes after (readers open the file by its path).
import { Writable } from 'node:stream';
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import os from 'node:os';
import { SecretMasker } from './secret-masker.ts';
import {
  formatLogLine, formatErrorLine, formatWarningLine, formatLogHeader, formatLogFooter,
  type LogHeaderFields,
} from './format.ts';
import type { WorkerLog } from './worker-log.ts';
import { silentLog } from './worker-log.ts';

export interface TaskLogOptions {
  /** Directory under which the backing file is created (default: the OS temp dir). */
  dir?: string;
  /** Strings replaced by `[*****]` everywhere in the log. More can be added with addSecrets(). */
  secrets?: Iterable<string>;
  /** Where the worker reports problems with the log itself. */
  log?: WorkerLog;
  /** Bytes buffered before writers are asked to wait (default 1 MiB). */
  highWaterMark?: number;
}

const FLUSH_BYTES = 256 * 1024;
const FLUSH_DELAY_MS = 10;

export class TaskLog extends Writable {
  /** Path of the backing file: the complete, masked log. */
  readonly path: string;
  #file: FileHandle | undefined;
  #dir: string;
  #masker: SecretMasker | undefined;
  #workerLog: WorkerLog;
  #bytesOnDisk = 0;
  #references = 1;
  #removed: Promise<void> | undefined;
  /** The first error met while writing the file, if any (the log then stops growing). */
  failure: Error | undefined;

  static async create(options: TaskLogOptions = {}): Promise<TaskLog> {
    const dir = await mkdtemp(path.join(options.dir ?? os.tmpdir(), 'task-log-'));
    const file = path.join(dir, 'live_backing.log');
    const handle = await open(file, 'w', 0o600);
    return new TaskLog(dir, file, handle, options);
  }

  private constructor(dir: string, file: string, handle: FileHandle, options: TaskLogOptions) {
    super({ highWaterMark: options.highWaterMark ?? 1024 * 1024, decodeStrings: true });
    this.#dir = dir;
    this.path = file;
    this.#file = handle;
    this.#masker = new SecretMasker(options.secrets ?? []);
    this.#workerLog = options.log ?? silentLog;
    this.setMaxListeners(0); // every live reader waits on changed()
    // Complete (or failed): keep only the file.
    const letGo = () => {
      this.#buffers = undefined;
      this.#masker = undefined;
      const file = this.#file;
      if (!file) return;
      // After the write under way, if any (a destroyed log may still have one).
      void this.#writing.catch(() => undefined).then(() => {
        if (this.#file === file) this.#file = undefined;
        return file.close();
      }).catch(() => undefined);
    };
    this.once('finish', letGo);
    this.once('close', letGo);
    // A write error must never crash the worker: keep it, log it, and stop growing.
    this.on('error', (err: Error) => {
      this.failure ??= err;
      this.#workerLog.error('task log write failed', { path: this.path, error: err.message });
      this.emit('grow');
    });
  }

  /** Bytes of masked log safely on disk: what live readers and the upload may read. */
  get bytesOnDisk(): number {
    return this.#bytesOnDisk;
  }

  /** True once the log is complete: ended and flushed (or failed). No more `grow` events. */
  get complete(): boolean {
    return this.writableFinished || this.destroyed;
  }

  /**
   * Resolves at the next change: more bytes on disk, the end of the log, or a failure; or when
   * `signal` aborts (a live reader that went away stops listening).
   */
  changed(signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.off('grow', done); this.off('finish', done); this.off('close', done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      if (signal?.aborted) return resolve();
      this.on('grow', done); this.on('finish', done); this.on('close', done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  /** Masks these strings from now on (e.g. values decrypted after the log was opened). */
  addSecrets(secrets: Iterable<string>): void {
    this.#masker?.add(secrets);
  }

  /** Writes `[taskcluster <time>] message`. Silently ignored once the log has ended. */
  info(message: string): void {
    this.#writeText(formatLogLine(message));
  }

  /** Writes `[taskcluster:error] message` on a line of its own. */
  error(message: string): void {
    this.#writeText(formatErrorLine(message));
  }

  /** Writes `[taskcluster:warn] message` on a line of its own. */
  warn(message: string): void {
    this.#writeText(formatWarningLine(message));
  }

  header(fields: LogHeaderFields): void {
    this.#writeText(formatLogHeader(fields));
  }

  footer(success: boolean, exitCode: number, startedAt: Date, finishedAt: Date = new Date()): void {
    this.#writeText(formatLogFooter(success, exitCode, startedAt, finishedAt));
  }

  /** Ends the log and resolves once every byte is on disk. Safe to call more than once. */
  async close(): Promise<void> {
    if (this.complete) return;
    await new Promise<void>((resolve) => {
      this.once('finish', resolve);
      this.once('close', resolve);
      if (!this.writableEnded) this.end();
    });
  }

  /** Takes a reference on the backing file (see release()). */
  retain(): void {
    if (this.#references <= 0) throw new Error('the task log file has already been removed');
    this.#references += 1;
  }

  /** Drops a reference; the backing file is removed with the last one. */
  async release(): Promise<void> {
    if (this.#references <= 0) return this.#removed;
    this.#references -= 1;
    if (this.#references > 0) return;
    if (!this.complete) this.destroy();
    this.#removed = (async () => {
      await this.#file?.close().catch(() => undefined);
      await rm(this.#dir, { recursive: true, force: true });
    })();
    return this.#removed;
  }

  #writeText(text: string): void {
    if (this.writableEnded || this.destroyed) return;
    this.write(text);
  }

  // Container output comes in pieces of at most 16 KiB (the engine's log messages), and a file
  // write per piece costs ~50 us of CPU: pieces are copied into one of two reused FLUSH_BYTES
  // buffers, which is written once it is full, or FLUSH_DELAY_MS after its first byte, so live
  // readers still see output within milliseconds. While one buffer is written the other fills.
  // The copy (a memcpy) lets the socket's buffers go at once instead of waiting for their
  // write; the log holds at most these two buffers, and each write is a single one.
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#gather(this.#masker!.push(chunk)).then(() => callback(), callback);
  }

  override _writev(chunks: { chunk: Buffer }[], callback: (error?: Error | null) => void): void {
    this.#gather(chunks.flatMap(({ chunk }) => this.#masker!.push(chunk))).then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#gather(this.#masker!.flush()).then(() => this.#flush()).then(() => this.#writing).then(() => callback(), callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    callback(error);
  }

  /** Gone once the log is complete. */
  #buffers: readonly [Buffer, Buffer] | undefined = [Buffer.allocUnsafe(FLUSH_BYTES), Buffer.allocUnsafe(FLUSH_BYTES)];
  #current = 0;
  #used = 0;
  #flushTimer: NodeJS.Timeout | undefined;
  /** The write under way (of the buffer that is not filling), if any. */
  #writing: Promise<void> = Promise.resolve();

  async #gather(pieces: Buffer[]): Promise<void> {
    for (const piece of pieces) {
      for (let offset = 0; offset < piece.length;) {
        if (this.#used === FLUSH_BYTES) await this.#flush();
        const copied = piece.copy(this.#buffers![this.#current], this.#used, offset);
        this.#used += copied;
        offset += copied;
      }
    }
    if (this.#used === FLUSH_BYTES) await this.#flush();
    else if (this.#used > 0) {
      this.#flushTimer ??= setTimeout(() => {
        this.#flushTimer = undefined;
        this.#flush().catch((err: Error) => this.destroy(err));
      }, FLUSH_DELAY_MS);
    }
  }

  /**
   * Once the other buffer's write has ended, starts writing what the current buffer holds and
   * switches to the other buffer. Resolves when the write has started, not ended.
   */
  async #flush(): Promise<void> {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    // Another flush may start a write while this one waits: wait for that one too.
    for (let writing = this.#writing; ; writing = this.#writing) {
      await writing;
      if (writing === this.#writing) break;
    }
    if (this.#used === 0) return;
    const data = this.#buffers![this.#current].subarray(0, this.#used);
    this.#current ^= 1;
    this.#used = 0;
    this.#writing = this.#append(data);
    // A failed write (a full disk) reaches the stream through the next flush or _final; until
    // then the rejection must not count as unhandled (it would take the worker down).
    this.#writing.catch(() => undefined);
  }

  async #append(data: Buffer): Promise<void> {
    for (let offset = 0; offset < data.length;) {
      const { bytesWritten } = await this.#file!.write(data, offset, data.length - offset, this.#bytesOnDisk);
      this.#bytesOnDisk += bytesWritten;
      offset += bytesWritten;
    }
    this.emit('grow');
  }
}
