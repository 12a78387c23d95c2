// The live log: one HTTP server per worker process serves every running task's log at
// `/log/<random token>`. A GET streams the bytes written so far, then follows new bytes (chunked
// transfer encoding) until the log ends. Readers read the backing file, never a memory buffer,
// and wait for the socket to drain: a slow or stalled reader costs one file handle and one small
// buffer, and never slows the task. When a log ends its URL keeps serving the complete log for
// a grace period (and while it is among the last `maxEndedLogs` to end), then answers 404.
import http from 'node:http';
import crypto from 'node:crypto';
import { open } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import type { TaskLog } from './task-log.ts';
import { parseByteRange, type ByteRange } from './byte-range.ts';
import type { WorkerLog } from './worker-log.ts';
import { silentLog } from './worker-log.ts';

export interface LiveLogServerOptions {
  /** Address to bind (default 127.0.0.1; use 0.0.0.0 to serve other machines). */
  host?: string;
  /** Port to listen on; 0 picks a free one (default 0). */
  port?: number;
  /** Base of the URLs handed out, e.g. `https://worker-1.example.com:32000` (default: http://<publicHost>:<port>). */
  publicUrl?: string;
  /** Host name in the URLs handed out when publicUrl is not given (default: the bound address, 127.0.0.1 for every address). */
  publicHost?: string;
  /** How long an ended log stays readable before its URL answers 404 (default 300 s). */
  graceSeconds?: number;
  /** How many ended logs stay readable at most; past it the oldest goes first (default 64). */
  maxEndedLogs?: number;
  log?: WorkerLog;
}

// Large reads: fewer syscalls and writes per byte. Each reader reads into two such buffers in
// turn, refilling one only once the socket has taken what it held: a reader following a 1 GiB
// log costs 2 x 256 KiB, not a GiB of short-lived buffers resident until garbage collection.
const READ_SIZE = 256 * 1024;

interface PublishedLog {
  taskLog: TaskLog;
  url: string;
  readers: Set<http.ServerResponse>;
  expiry: NodeJS.Timeout | undefined;
}

export class LiveLogServer {
  #server: http.Server;
  #byToken = new Map<string, PublishedLog>();
  #byLog = new Map<TaskLog, string>();
  #publicUrl: string;
  #graceMs: number;
  #maxEnded: number;
  /** Tokens of ended logs still served, oldest first. */
  #ended = new Set<string>();
  #log: WorkerLog;

  static async start(options: LiveLogServerOptions = {}): Promise<LiveLogServer> {
    const server = http.createServer();
    const host = options.host ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, host, () => { server.off('error', reject); resolve(); });
    });
    const { port } = server.address() as AddressInfo;
    const shownHost = options.publicHost || (host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host);
    const publicUrl = (options.publicUrl ?? `http://${shownHost}:${port}`).replace(/\/+$/, '');
    return new LiveLogServer(server, publicUrl, options);
  }

  private constructor(server: http.Server, publicUrl: string, options: LiveLogServerOptions) {
    this.#server = server;
    this.#publicUrl = publicUrl;
    this.#graceMs = (options.graceSeconds ?? 300) * 1000;
    this.#maxEnded = Math.max(0, options.maxEndedLogs ?? 64);
    this.#log = options.log ?? silentLog;
    server.on('request', (req, res) => {
      this.#handle(req, res).catch((err: Error) => {
        this.#log.warn('live log request failed', { url: req.url, error: err.message });
        if (!res.headersSent) { res.statusCode = 500; res.end('Internal error while reading the log\n'); } else res.destroy();
      });
    });
  }

  /** The port actually bound. */
  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /** Makes a task log readable at a fresh URL and returns that URL. Idempotent per log. */
  publish(taskLog: TaskLog): string {
    const known = this.#byLog.get(taskLog);
    if (known) return this.#byToken.get(known)!.url;
    const token = crypto.randomBytes(24).toString('base64url');
    const entry: PublishedLog = { taskLog, url: `${this.#publicUrl}/log/${token}`, readers: new Set(), expiry: undefined };
    taskLog.retain();
    this.#byToken.set(token, entry);
    this.#byLog.set(taskLog, token);
    const startGrace = () => {
      if (entry.expiry || !this.#byToken.has(token)) return;
      entry.expiry = setTimeout(() => void this.#unpublish(token), this.#graceMs);
      entry.expiry.unref();
      this.#ended.add(token);
      // Bounded by count as well as time: a busy worker ends hundreds of tasks in five minutes.
      for (const oldest of this.#ended) {
        if (this.#ended.size <= this.#maxEnded) break;
        void this.#unpublish(oldest);
      }
    };
    if (taskLog.complete) startGrace();
    else { taskLog.once('finish', startGrace); taskLog.once('close', startGrace); }
    return entry.url;
  }

  /** The live URL of a published log, if it is (still) served. */
  urlFor(taskLog: TaskLog): string | undefined {
    const token = this.#byLog.get(taskLog);
    return token ? this.#byToken.get(token)?.url : undefined;
  }

  /** Stops serving everything and releases every log. */
  async close(): Promise<void> {
    await Promise.all([...this.#byToken.keys()].map((token) => this.#unpublish(token)));
    await new Promise<void>((resolve) => { this.#server.close(() => resolve()); this.#server.closeAllConnections(); });
  }

  async #unpublish(token: string): Promise<void> {
    const entry = this.#byToken.get(token);
    if (!entry) return;
    this.#byToken.delete(token);
    this.#ended.delete(token);
    this.#byLog.delete(entry.taskLog);
    clearTimeout(entry.expiry);
    for (const res of entry.readers) res.destroy();
    await entry.taskLog.release();
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    res.setHeader('Access-Control-Allow-Origin', '*');
    const m = /^\/log\/([A-Za-z0-9_-]+)$/.exec(new URL(req.url ?? '/', 'http://x').pathname);
    const entry = m ? this.#byToken.get(m[1]) : undefined;
    if (!entry) return reply(res, 404, 'No live log here: the task has ended or the URL is wrong.\n');
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { 'Access-Control-Allow-Methods': 'GET, HEAD', 'Access-Control-Allow-Headers': 'Range' });
      return void res.end();
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD, OPTIONS');
      return reply(res, 405, 'Only GET and HEAD are supported.\n');
    }

    const { taskLog } = entry;
    const length = taskLog.bytesOnDisk;
    const range = parseByteRange(req.headers.range, length);
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    res.setHeader('Cache-Control', 'no-cache, no-store');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Accept-Ranges', 'bytes');
    res.setHeader('Access-Control-Expose-Headers', 'Content-Range, Content-Length');

    if (taskLog.complete) {
      // The whole log is known: plain, sized response.
      if (range && range.start >= length) {
        res.setHeader('Content-Range', `bytes */${length}`);
        return reply(res, 416, 'The requested range starts after the end of the log.\n');
      }
      const start = range?.start ?? 0;
      const end = Math.min(range?.end ?? length - 1, length - 1);
      res.setHeader('Content-Length', Math.max(0, end - start + 1));
      if (range) res.setHeader('Content-Range', `bytes ${start}-${end}/${length}`);
      res.writeHead(range ? 206 : 200);
    } else {
      // Still growing: the total is unknown, the body is chunked and follows the log.
      if (range) res.setHeader('Content-Range', `bytes ${range.start}-${range.end ?? '*'}/*`);
      res.writeHead(range ? 206 : 200);
    }
    if (req.method === 'HEAD') return void res.end();
    res.flushHeaders();

    entry.readers.add(res);
    try {
      await this.#follow(taskLog, res, range);
    } finally {
      entry.readers.delete(res);
    }
  }

  /** Copies the log from the requested offset to the response, following it until it ends. */
  async #follow(taskLog: TaskLog, res: http.ServerResponse, range: ByteRange | undefined): Promise<void> {
    const gone = new AbortController();
    const onClose = () => gone.abort();
    res.once('close', onClose);
    const file = await open(taskLog.path, 'r');
    const buffers = [Buffer.allocUnsafe(READ_SIZE), Buffer.allocUnsafe(READ_SIZE)];
    const written: Promise<void>[] = [Promise.resolve(), Promise.resolve()];
    const closed = new Promise<void>((resolve) => gone.signal.addEventListener('abort', () => resolve(), { once: true }));
    try {
      let position = range?.start ?? 0;
      const last = range?.end ?? Infinity;
      let turn = 0;
      while (!gone.signal.aborted) {
        const available = Math.min(taskLog.bytesOnDisk, last + 1);
        if (position < available) {
          await Promise.race([written[turn], closed]); // the socket has taken this buffer's last contents
          if (gone.signal.aborted) break;
          const buffer = buffers[turn]!;
          const { bytesRead } = await file.read(buffer, 0, Math.min(READ_SIZE, available - position), position);
          if (bytesRead === 0) break;
          position += bytesRead;
          written[turn] = new Promise<void>((resolve) => res.write(buffer.subarray(0, bytesRead), () => resolve()));
          turn ^= 1;
          continue;
        }
        if (position > last || taskLog.complete) break;
        await taskLog.changed(gone.signal);
      }
      await Promise.race([Promise.all(written), closed]);
    } finally {
      res.off('close', onClose);
      await file.close();
    }
    if (!gone.signal.aborted) res.end();
  }
}

function reply(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' });
  res.end(text);
}
