// The worker side of Taskcluster's runner/worker protocol (tools/workerproto in the
// Taskcluster repository): one message per line, `~{json}` with a `type`, on the worker's
// stdin (from worker-runner) and stdout (to it). Lines that are not messages are ignored.
// worker-runner opens with `welcome` and its capabilities; the worker answers `hello` with
// those of its own it shares, and from then on only messages of shared capabilities are sent.
import readline from 'node:readline';
import type { Readable, Writable } from 'node:stream';

export interface RunnerMessage {
  type: string;
  [k: string]: unknown;
}

/** Parses one protocol line; undefined for anything else. */
export function parseRunnerLine(line: string): RunnerMessage | undefined {
  const text = line.trim();
  if (!text.startsWith('~{') || !text.endsWith('}')) return undefined;
  try {
    const msg = JSON.parse(text.slice(1)) as unknown;
    if (msg && typeof msg === 'object' && !Array.isArray(msg) && typeof (msg as RunnerMessage).type === 'string') return msg as RunnerMessage;
  } catch { /* not a message */ }
  return undefined;
}

export function formatRunnerMessage(msg: RunnerMessage): string {
  return `~${JSON.stringify(msg)}\n`;
}

export class RunnerProtocol {
  readonly #input: Readable;
  readonly #output: Writable;
  readonly #ours: readonly string[];
  readonly #lines: readline.Interface;
  readonly #handlers = new Map<string, (msg: RunnerMessage) => void>();
  #shared: Set<string> | undefined;
  #initialized!: () => void;
  /** Resolves once `hello` was sent (the capabilities are known). */
  readonly initialized: Promise<void>;

  constructor(input: Readable, output: Writable, capabilities: readonly string[]) {
    this.#input = input;
    this.#output = output;
    this.#ours = capabilities;
    this.initialized = new Promise((r) => { this.#initialized = r; });
    this.#lines = readline.createInterface({ input, crlfDelay: Infinity });
    this.#lines.on('line', (line) => {
      const msg = parseRunnerLine(line);
      if (msg) this.#receive(msg);
    });
  }

  #receive(msg: RunnerMessage): void {
    if (msg.type === 'welcome') {
      const offered = Array.isArray(msg.capabilities) ? msg.capabilities.filter((c): c is string => typeof c === 'string') : [];
      this.#shared = new Set(this.#ours.filter((c) => offered.includes(c)));
      this.#write({ type: 'hello', capabilities: [...this.#shared] });
      this.#initialized();
      return;
    }
    // Every other message belongs to a capability both sides named.
    if (!this.#shared?.has(msg.type)) return;
    this.#handlers.get(msg.type)?.(msg);
  }

  on(type: string, handler: (msg: RunnerMessage) => void): void {
    this.#handlers.set(type, handler);
  }

  capable(capability: string): boolean {
    return this.#shared?.has(capability) ?? false;
  }

  /** Sends a message of a shared capability; false (nothing sent) otherwise. */
  send(msg: RunnerMessage): boolean {
    if (!this.capable(msg.type)) return false;
    this.#write(msg);
    return true;
  }

  #write(msg: RunnerMessage): void {
    this.#output.write(formatRunnerMessage(msg));
  }

  /** Stops reading: the input no longer keeps the process alive. */
  close(): void {
    this.#lines.close();
    this.#input.pause();
    (this.#input as Readable & { unref?: () => void }).unref?.();
  }
}
