// A docker-exec-websocket-server client for tests: opens a session, collects stdout, stderr,
// errors and the exit code.
import WebSocket from 'ws';
import { MSG, frame, resizeFrame } from '../../lib/interactive/exec-protocol.ts';
import { sessionUrl } from '../../lib/interactive/shell-location.ts';

export interface TestShell {
  ws: WebSocket;
  stdout(): Buffer;
  stderr(): string;
  errors: string[];
  /** Whether the server said it shut the session down. */
  shutdown(): boolean;
  /** Resolves with the exit code (or null when the socket closed without one). */
  exit: Promise<number | null>;
  opened: Promise<void>;
  write(data: string | Buffer): void;
  end(): void;
  resize(rows: number, columns: number): void;
  close(): void;
}

export function openShell(socketUrl: string, command: string[], tty = false, options: WebSocket.ClientOptions = {}): TestShell {
  const ws = new WebSocket(sessionUrl(socketUrl, command, tty), options);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const errors: string[] = [];
  let code: number | null = null;
  let shutdown = false;
  const exit = new Promise<number | null>((resolve) => ws.on('close', () => resolve(code)));
  const opened = new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
  opened.catch(() => undefined);
  ws.on('error', () => undefined);
  ws.on('message', (data: Buffer) => {
    switch (data[0]) {
      case MSG.stdout: out.push(data.subarray(1)); break;
      case MSG.stderr: err.push(data.subarray(1)); break;
      case MSG.stopped: code = data[1]!; break;
      case MSG.error: errors.push(data.subarray(1).toString('utf8')); break;
      case MSG.shutdown: shutdown = true; break;
      default: break;
    }
  });
  const send = (b: Buffer) => { void opened.then(() => ws.send(b)); };
  return {
    ws, errors, exit, opened,
    shutdown: () => shutdown,
    stdout: () => Buffer.concat(out),
    stderr: () => Buffer.concat(err).toString('utf8'),
    write: (data) => send(frame(MSG.stdin, typeof data === 'string' ? Buffer.from(data) : data)),
    end: () => send(frame(MSG.end)),
    resize: (rows, columns) => send(resizeFrame(rows, columns)),
    close: () => ws.close(),
  };
}
