// One shell session: a command run with `docker exec` in the task's container, its stdin, stdout
// and stderr carried over one websocket in the docker-exec-websocket-server protocol.
//
// Flow control both ways, so neither a fast command nor a fast client can fill the worker's
// memory: the command's output stops being read while more than HIGH_WATER bytes sent to the
// socket are not yet written out (and while the client asked for a pause), and is read again
// below LOW_WATER; when the command's stdin does not keep up, the client is told to pause and
// then to resume once it drained, and the socket is not read meanwhile.
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import type { Engine, ExecSession } from '../docker/engine.ts';
import { DockerStreamDemuxer, MSG, frame, type ExecRequest } from './exec-protocol.ts';

export const HIGH_WATER = 1024 * 1024;
export const LOW_WATER = 256 * 1024;

export class ShellSession {
  readonly #socket: WebSocket;
  readonly #request: ExecRequest;
  #exec: ExecSession | undefined;
  #stream: Duplex | undefined;
  #unsent = 0;
  #clientPaused = false;
  #stdinPaused = false;
  #closed = false;
  readonly closed: Promise<void>;
  #markClosed!: () => void;

  constructor(socket: WebSocket, request: ExecRequest) {
    this.#socket = socket;
    this.#request = request;
    this.closed = new Promise((resolve) => { this.#markClosed = resolve; });
    socket.on('close', () => this.close());
    socket.on('error', () => this.close());
    // Input may come before the command runs: kept (the socket is not read meanwhile) and
    // handled in order once it does.
    socket.pause();
    socket.on('message', (data: Buffer, isBinary: boolean) => {
      const message = isBinary ? data : Buffer.from(data);
      if (this.#early) this.#early.push(message); else this.#onMessage(message);
    });
  }

  #early: Buffer[] | undefined = [];

  /** Starts the command; the session ends when it exits or the socket closes. */
  async start(engine: Engine, containerId: string): Promise<void> {
    try {
      this.#exec = await engine.exec(containerId, { cmd: this.#request.command, tty: this.#request.tty, stdin: true });
    } catch (err) {
      this.fail(`could not start ${this.#request.command.join(' ')}: ${(err as Error).message}`);
      return;
    }
    const stream = this.#exec.stream;
    this.#stream = stream;
    if (this.#closed) { stream.destroy(); return; }
    const demux = this.#request.tty ? undefined : new DockerStreamDemuxer((code, payload) => this.#send(code, payload));
    stream.on('data', (chunk: Buffer) => (demux ? demux.push(chunk) : this.#send(MSG.stdout, chunk)));
    stream.on('drain', () => { this.#stdinPaused = false; this.#socket.resume(); this.#sendRaw(frame(MSG.resume)); });
    stream.once('end', () => void this.#exited());
    stream.once('close', () => void this.#exited());
    stream.on('error', () => void this.#exited());
    const early = this.#early ?? [];
    this.#early = undefined;
    for (const message of early) this.#onMessage(message);
    if (!this.#stdinPaused) this.#socket.resume();
    this.#sendRaw(frame(MSG.resume)); // ready for input, as the package's server says
  }

  #onMessage(message: Buffer): void {
    if (message.length === 0 || !this.#stream) return;
    switch (message[0]) {
      case MSG.stdin:
        if (!this.#stream.writableEnded && !this.#stream.write(message.subarray(1))) {
          // The command does not keep up: stop reading the socket until it drained (a client
          // that ignores the pause then waits in TCP, not in the worker's memory).
          this.#stdinPaused = true;
          this.#socket.pause();
          this.#sendRaw(frame(MSG.pause));
        }
        break;
      case MSG.end:
        if (!this.#stream.writableEnded) this.#stream.end();
        break;
      case MSG.resize:
        if (!this.#request.tty) { this.#sendRaw(frame(MSG.error, 'cannot resize, not a tty instance')); break; }
        if (message.length >= 5) void this.#exec?.resize(message.readUInt16LE(1), message.readUInt16LE(3)).catch(() => undefined);
        break;
      case MSG.pause:
        this.#clientPaused = true;
        this.#stream.pause();
        break;
      case MSG.resume:
        this.#clientPaused = false;
        this.#maybeResume();
        break;
      default:
        break; // unknown codes are ignored, as the package's server does
    }
  }

  #send(code: number, payload: Buffer): void {
    this.#sendRaw(frame(code, payload));
  }

  #sendRaw(data: Buffer): void {
    if (this.#closed || this.#socket.readyState !== this.#socket.OPEN) return;
    this.#unsent += data.length;
    this.#socket.send(data, { binary: true }, () => {
      this.#unsent -= data.length;
      this.#maybeResume();
    });
    if (this.#unsent > HIGH_WATER) this.#stream?.pause();
  }

  #maybeResume(): void {
    if (this.#stream && this.#stream.isPaused() && !this.#clientPaused && this.#unsent < LOW_WATER && !this.#closed) this.#stream.resume();
  }

  #exitSent = false;
  async #exited(): Promise<void> {
    if (this.#exitSent || this.#closed) return;
    this.#exitSent = true;
    // The engine may still say the command runs for a moment after its output ended (seconds on a
    // busy host): ask again, more slowly, for up to about 10 s.
    let code: number | null = null;
    for (let i = 0; i < 60 && code === null; i++) {
      code = await this.#exec!.exitCode().catch(() => -1);
      if (code === null) await new Promise((r) => setTimeout(r, Math.min(50 * (i + 1), 250)));
    }
    this.#sendRaw(frame(MSG.stopped, Buffer.from([(code ?? 255) & 0xff])));
    this.#socket.close(1000, 'command exited');
    this.close();
  }

  /** Tells the client something went wrong and ends the session. */
  fail(message: string): void {
    this.#sendRaw(frame(MSG.error, message));
    this.#socket.close(1011, 'error');
    this.close();
  }

  /** Tells the client the server shuts the session down, and ends it. */
  shutdown(): void {
    this.#sendRaw(frame(MSG.shutdown));
    this.#socket.close(1001, 'shutting down');
    this.close();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stream?.destroy();
    if (this.#socket.readyState === this.#socket.OPEN || this.#socket.readyState === this.#socket.CONNECTING) {
      // Let what was queued go out; a client that does not close in time is cut off.
      setTimeout(() => this.#socket.terminate(), 5000).unref();
    }
    this.#markClosed();
  }
}
