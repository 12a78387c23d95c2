// A container's output read straight off the engine's socket, attached before the start (as
// `docker run` does: every byte from the first), into one reused read buffer.
//
// dockerode's attach gives a stream whose every socket read is a freshly allocated buffer that
// also passes through the HTTP parser: for a task printing a GiB, tens of thousands of
// short-lived 64 KiB buffers, which the garbage collector then has to chase out of a small
// heap. Here the socket reads into one buffer (net's `onread`), the few header bytes of the
// upgrade answer are parsed by hand, frames are split in place when there is no TTY, and the
// bytes go synchronously to a sink that copies what it keeps (the task log). When the sink is
// full the socket stops reading (the container then waits on its write, as with any attach)
// until the sink has room again, and after a short read it rests a millisecond so that the
// next read takes more at once.
import net from 'node:net';
import { EventEmitter } from 'node:events';
import { EngineError, toEngineError } from './engine-error.ts';
import { engineHungError } from './engine-deadline.ts';
import { FrameSplitter } from './frames.ts';

/** Where the output goes: bytes are valid only during take(), their buffer is reused after. */
export interface OutputSink {
  /** Copies what it keeps of `data`; false asks the sender to wait for room() first. */
  take(data: Buffer): boolean;
  /** Resolves once the sink can take more. */
  room(): Promise<void>;
}

const READ_BUFFER_BYTES = 256 * 1024;
const MAX_HEAD_BYTES = 64 * 1024;
// A TTY's output comes off the engine a few KiB per socket read (the pty's pieces): 160,000
// reads, wake-ups and callbacks per GiB. After a read shorter than GATHER_BELOW the socket
// rests GATHER_MS, while the kernel gathers what follows into the socket's buffer (at 60 MB/s
// 1 ms is ~60 KB, well under the ~200 KB the engine's side may have in flight before its write
// waits): reads become tens of KiB, a tenth as many, for at most 1 ms more latency.
const GATHER_MS = 1;
const GATHER_BELOW = 64 * 1024;

/**
 * The attached output. Emits 'data' (without the bytes: the sink has them) as output arrives,
 * 'end' when the engine closed the stream, 'close' after end or destroy, 'error' on a broken
 * connection.
 */
export class AttachedOutput extends EventEmitter {
  #socket: net.Socket | undefined;
  #sink: OutputSink;
  #dropping = false;
  #waiting = false;
  #gathering = false;
  // Without a TTY the stream is frames (frames.ts), split in place.
  #frames: FrameSplitter | undefined;
  #take = (payload: Buffer): boolean => this.#sink.take(payload);
  readableEnded = false;
  destroyed = false;

  constructor(sink: OutputSink, framed: boolean) {
    super();
    this.#sink = sink;
    this.#frames = framed ? new FrameSplitter() : undefined;
  }

  /** @internal Hands over the upgraded socket. */
  start(socket: net.Socket): void {
    this.#socket = socket;
    socket.once('end', () => { this.readableEnded = true; this.emit('end'); socket.end(); });
    socket.once('close', () => { this.destroyed = true; this.emit('close'); });
    socket.on('error', (err) => { if (this.listenerCount('error') > 0) this.emit('error', err); });
  }

  /** Reads on and drops everything from now on (the sink has failed). */
  drop(): void {
    this.#dropping = true;
    if (this.#waiting) { this.#waiting = false; this.#socket?.resume(); }
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.#socket?.destroy();
  }

  /** @internal Bytes read from the socket after the answer's head; false stops reading. */
  received(data: Buffer): boolean {
    if (data.length === 0) return true;
    this.emit('data'); // output arrived (dropped or not: the container is still writing)
    if (this.#dropping) return true;
    const more = this.#frames ? this.#frames.push(data, this.#take) : this.#sink.take(data);
    if (more && GATHER_MS > 0 && data.length < GATHER_BELOW && !this.#gathering) {
      this.#gathering = true;
      setTimeout(() => { this.#gathering = false; if (!this.#waiting) this.#socket?.resume(); }, GATHER_MS);
      return false;
    }
    if (more || this.#dropping) return true;
    this.#waiting = true;
    void this.#sink.room().then(() => {
      if (!this.#waiting) return;
      this.#waiting = false;
      this.#socket?.resume();
    });
    return false;
  }
}

/**
 * Attaches to a created (not yet started) container's stdout and stderr through the engine's
 * unix socket; `tty` says whether the container has a TTY (raw bytes) or not (framed stdout
 * and stderr, merged here). Rejects with an EngineError when the engine refuses.
 */
export function attachOutput(socketPath: string, containerId: string, options: { tty: boolean; sink: OutputSink; signal?: AbortSignal; answerMs?: number }): Promise<AttachedOutput> {
  const action = `attach to container ${containerId}`;
  const output = new AttachedOutput(options.sink, !options.tty);
  return new Promise<AttachedOutput>((resolve, reject) => {
    let head: Buffer | undefined = Buffer.alloc(0);
    let settled = false;
    const abandon = () => fail(new Error('the attach was abandoned before the engine answered (the run was interrupted)'));
    // A hung engine (it takes the connection, never answers) gets answerMs to answer the attach.
    const answerTimer = options.answerMs === undefined ? undefined
      : setTimeout(() => fail(engineHungError(action, options.answerMs!, socketPath)), options.answerMs);
    const fail = (err: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(answerTimer);
      options.signal?.removeEventListener('abort', abandon);
      socket.destroy();
      reject(err instanceof EngineError ? err : toEngineError(err, action, socketPath));
    };
    const socket = net.connect({
      path: socketPath,
      onread: {
        buffer: Buffer.allocUnsafe(READ_BUFFER_BYTES),
        callback: (size: number, buffer: Buffer): boolean => {
          const data = buffer.subarray(0, size);
          if (head === undefined) return output.received(data);
          // Still reading the answer's head: it is small and arrives once, so it is copied.
          head = Buffer.concat([head, data]);
          const endOfHead = head.indexOf('\r\n\r\n');
          if (endOfHead < 0) {
            if (head.length > MAX_HEAD_BYTES) fail(new Error('the engine\'s answer to attach had no end of headers'));
            return true;
          }
          const text = head.subarray(0, endOfHead).toString('latin1');
          const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
          if (status !== 101 && status !== 200) {
            // An error answer: its body is the daemon's JSON message (usually in the same read).
            const body = head.subarray(endOfHead + 4).toString('utf8');
            let json: unknown = body;
            try { json = JSON.parse(body); } catch { /* plain text */ }
            fail(Object.assign(new Error(`(HTTP code ${status}) ${body.trim()}`), { statusCode: status, json }));
            return false;
          }
          const rest = Buffer.from(head.subarray(endOfHead + 4));
          head = undefined;
          settled = true;
          clearTimeout(answerTimer);
          options.signal?.removeEventListener('abort', abandon);
          output.start(socket);
          resolve(output);
          return output.received(rest);
        },
      },
    });
    socket.once('error', fail);
    socket.once('close', () => fail(new Error('the engine closed the connection before answering attach')));
    // An engine that never answers must not hold an interrupted run (cancel, shutdown) for good.
    if (options.signal?.aborted) abandon();
    else options.signal?.addEventListener('abort', abandon, { once: true });
    socket.once('connect', () => {
      socket.write(
        `POST /containers/${encodeURIComponent(containerId)}/attach?stream=1&stdout=1&stderr=1&logs=0 HTTP/1.1\r\n` +
        'Host: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n');
    });
  });
}
