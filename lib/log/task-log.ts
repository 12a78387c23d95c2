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
import type { OutputSink } from '../docker/attach-socket.ts';
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
/** Bytes that may wait for the disk before writers are asked to wait. */
const ROOM_BYTES = 1024 * 1024;
/** Buffers kept for reuse: as many as may wait for the disk, plus the one filling. */
const KEPT_BUFFERS = ROOM_BYTES / FLUSH_BYTES + 1;

/** Masked output waiting for the disk: views of `buffer` (and masks), reused once written. */
interface QueuedOutput { pieces: Buffer[]; bytes: number; buffer: Buffer | undefined }

export class TaskLog extends Writable implements OutputSink {
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
      this.#current = undefined;
      this.#masker = undefined;
      const file = this.#file;
      if (!file) return;
      // After the write under way, if any (a destroyed log may still have one).
      void this.#idle().catch(() => undefined).then(() => {
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

  // Output is copied as it comes into FLUSH_BYTES buffers (reused), and a buffer is masked and
  // written once it is full, or FLUSH_DELAY_MS after its first byte, so live readers still see
  // output within milliseconds; the buffers waiting meanwhile go in one vectored write. The copy
  // (a memcpy) lets the producer's buffer go (or be reused: take()) at once. Masking a whole
  // buffer rather than each piece as it comes (an attach hands over a few KiB at a time) costs
  // one search per secret per 256 KiB, and the masked pieces are views of the buffer, written
  // as they are. Up to ROOM_BYTES may wait for the disk; beyond that writers are asked to wait
  // (a pipe's write callback, take()'s false), which an attach passes on to the container.

  /**
   * Takes container output synchronously: what it keeps is copied before it returns, so the
   * caller may reuse `data`'s buffer. False asks for a wait on room() before more. Dropped
   * once the log has ended or failed.
   */
  take(data: Buffer): boolean {
    if (this.writableEnded || this.destroyed) return true;
    if (this.#blocked || this.writableLength > 0) {
      // Earlier writes are queued: keep the order behind them (a copy, rare).
      this.write(Buffer.from(data));
      return false;
    }
    this.#copy(data);
    return this.#hasRoom();
  }

  /** Resolves once take() may be called again (at once when there is room, or the log is over). */
  room(): Promise<void> {
    if (this.#roomy()) return Promise.resolve();
    return new Promise((resolve) => this.#roomWaiters.push(resolve));
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#copy(chunk);
    this.#continue(callback);
  }

  override _writev(chunks: { chunk: Buffer }[], callback: (error?: Error | null) => void): void {
    for (const { chunk } of chunks) this.#copy(chunk);
    this.#continue(callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#flushCurrent();
    // What the masker held back in case a secret went on past it.
    const held = this.#masker?.flush() ?? [];
    if (held.length > 0) this.#queue({ pieces: held, bytes: held.reduce((n, b) => n + b.length, 0), buffer: undefined });
    this.#idle().then(() => callback(), callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    this.#wakeRoomWaiters();
    callback(error);
  }

  /** Free buffers for the next output; gone once the log is complete. */
  #buffers: Buffer[] | undefined = [];
  /** The buffer filling with unmasked output, and how much of it is used. */
  #current: Buffer | undefined;
  #used = 0;
  /** Masked output waiting for the disk, oldest first. */
  #full: QueuedOutput[] = [];
  /** Bytes in #full and in the write under way. */
  #pending = 0;
  #flushTimer: NodeJS.Timeout | undefined;
  /** The write loop, while it runs. */
  #writing: Promise<void> | undefined;
  /** A _write waiting for room. */
  #blocked: (() => void) | undefined;
  #roomWaiters: (() => void)[] = [];

  #hasRoom(): boolean {
    return this.#pending < ROOM_BYTES;
  }

  #roomy(): boolean {
    return (this.#hasRoom() && !this.#blocked && this.writableLength === 0) || this.writableEnded || this.destroyed;
  }

  #continue(callback: () => void): void {
    if (this.#hasRoom()) callback();
    else this.#blocked = callback;
  }

  #copy(data: Buffer): void {
    if (!this.#buffers) return;
    for (let offset = 0; offset < data.length;) {
      this.#current ??= this.#buffers.pop() ?? Buffer.allocUnsafe(FLUSH_BYTES);
      const copied = data.copy(this.#current, this.#used, offset);
      this.#used += copied;
      offset += copied;
      if (this.#used === FLUSH_BYTES) this.#flushCurrent();
    }
    if (this.#used > 0) {
      this.#flushTimer ??= setTimeout(() => {
        this.#flushTimer = undefined;
        this.#flushCurrent();
      }, FLUSH_DELAY_MS);
    }
  }

  /** Masks what the current buffer holds and queues it for the disk. */
  #flushCurrent(): void {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    if (this.#used === 0 || !this.#current) return;
    const data = this.#current.subarray(0, this.#used);
    const pieces = this.#masker ? this.#masker.push(data) : [data];
    let bytes = 0;
    for (const piece of pieces) bytes += piece.length;
    this.#queue({ pieces, bytes, buffer: this.#current });
    this.#current = undefined;
    this.#used = 0;
  }

  /** Queues masked output for the disk, and starts the write loop. */
  #queue(output: QueuedOutput): void {
    this.#full.push(output);
    this.#pending += output.bytes;
    if (!this.#writing) {
      this.#writing = this.#writeLoop();
      // A failed write (a full disk) destroys the log; the rejection must not count as unhandled.
      this.#writing.catch(() => undefined);
    }
  }

  /** Resolves once every queued buffer is on disk. */
  async #idle(): Promise<void> {
    while (this.#writing) await this.#writing;
  }

  /** Writes the queued output, all of it in one vectored write each turn, until none is left. */
  async #writeLoop(): Promise<void> {
    await undefined; // #writing is set before the loop can end
    try {
      while (this.#full.length > 0 && this.#file) {
        const batch = this.#full;
        this.#full = [];
        const pieces = batch.flatMap((output) => output.pieces);
        const total = batch.reduce((n, output) => n + output.bytes, 0);
        let { bytesWritten } = await this.#file.writev(pieces, this.#bytesOnDisk);
        // A short write (rare on a plain file) goes on from where it stopped.
        for (let done = bytesWritten; done < total;) {
          const rest = Buffer.concat(pieces).subarray(done);
          ({ bytesWritten } = await this.#file.write(rest, 0, rest.length, this.#bytesOnDisk + done));
          done += bytesWritten;
        }
        this.#bytesOnDisk += total;
        this.#pending -= total;
        // The written buffers are free again: reused for the next output (no garbage to collect).
        for (const { buffer } of batch) {
          if (buffer && this.#buffers && this.#buffers.length < KEPT_BUFFERS) this.#buffers.push(buffer);
        }
        this.emit('grow');
        if (this.#hasRoom()) {
          const blocked = this.#blocked;
          this.#blocked = undefined;
          blocked?.();
          this.#wakeRoomWaiters();
        }
      }
    } catch (err) {
      this.destroy(err as Error);
      throw err;
    } finally {
      this.#writing = undefined;
    }
  }

  #wakeRoomWaiters(): void {
    if (!this.#roomy()) return;
    const waiters = this.#roomWaiters;
    this.#roomWaiters = [];
    for (const wake of waiters) wake();
  }
}
