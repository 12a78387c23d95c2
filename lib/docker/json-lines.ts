// Reads a stream of newline-separated JSON objects (the Docker engine's progress format).
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';

/** Yields each JSON object of the stream; blank lines are skipped, a malformed line is an error. */
export async function* readJsonLines<T>(stream: Readable): AsyncGenerator<T> {
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  for await (const line of lines) {
    const text = line.trim();
    if (!text) continue;
    try {
      yield JSON.parse(text) as T;
    } catch {
      throw new Error(`Docker sent an unreadable progress line: ${text.slice(0, 200)}`);
    }
  }
}
