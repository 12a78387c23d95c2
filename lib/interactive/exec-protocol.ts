// The wire protocol of the npm `docker-exec-websocket-server` (the interactive shell docker-worker
// served), so its clients keep working: every websocket message is binary, its first byte says
// what it is, the rest is the payload. The command and whether to allocate a terminal come as
// the query parameters `command` (repeated for each argument) and `tty` ("true").
export const MSG = {
  /** client → server: bytes for the command's stdin. */
  stdin: 0,
  /** server → client: bytes the command wrote. */
  stdout: 1,
  stderr: 2,
  /** client → server: the terminal's size, rows then columns, each UInt16LE. */
  resize: 50,
  /** Either way: ready for more data / hold on (no payload). */
  resume: 100,
  pause: 101,
  /** client → server: stdin is closed. */
  end: 102,
  /** server → client: the command exited; the payload is one byte, its exit code. */
  stopped: 200,
  /** server → client: the server is shutting the session down. */
  shutdown: 201,
  /** server → client: something went wrong; the payload is a UTF-8 message. */
  error: 202,
} as const;

export function frame(code: number, payload?: Uint8Array | string): Buffer {
  if (payload === undefined) return Buffer.from([code]);
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  return Buffer.concat([Buffer.from([code]), body]);
}

export function resizeFrame(rows: number, columns: number): Buffer {
  const out = Buffer.alloc(5);
  out[0] = MSG.resize;
  out.writeUInt16LE(rows, 1);
  out.writeUInt16LE(columns, 3);
  return out;
}

export interface ExecRequest {
  command: string[];
  tty: boolean;
}

/** The command (default `sh`, as the package's client) and tty flag of a session's URL. */
export function execRequestFrom(url: URL): ExecRequest {
  const command = url.searchParams.getAll('command').filter((c) => c !== '');
  return { command: command.length ? command : ['sh'], tty: /^true$/i.test(url.searchParams.get('tty') ?? '') };
}

/**
 * Splits Docker's multiplexed exec output (no tty): 8-byte headers [stream, 0, 0, 0, size BE32]
 * each followed by `size` bytes. Feed it chunks as they come; it calls `onFrame` per payload.
 */
export class DockerStreamDemuxer {
  #pending: Buffer = Buffer.alloc(0);
  readonly #onFrame: (stream: number, payload: Buffer) => void;

  constructor(onFrame: (stream: number, payload: Buffer) => void) {
    this.#onFrame = onFrame;
  }

  push(chunk: Buffer): void {
    let data = this.#pending.length ? Buffer.concat([this.#pending, chunk]) : chunk;
    while (data.length >= 8) {
      const size = data.readUInt32BE(4);
      if (data.length < 8 + size) break;
      const stream = data[0] === 2 ? MSG.stderr : MSG.stdout;
      this.#onFrame(stream, data.subarray(8, 8 + size));
      data = data.subarray(8 + size);
    }
    this.#pending = Buffer.from(data);
  }
}
