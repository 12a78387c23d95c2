// Parses a `Range` request header for a single byte range against a log whose length may still
// grow. Supported: `bytes=N-`, `bytes=N-M`, `bytes=-N` (the last N bytes written so far).
// Anything else (other units, several ranges, garbage) is ignored as HTTP allows: full content.

export interface ByteRange {
  start: number;
  /** Inclusive; undefined = to the end of the log, following it while it grows. */
  end: number | undefined;
}

export function parseByteRange(header: string | undefined, currentLength: number): ByteRange | undefined {
  if (!header) return undefined;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    return { start: Math.max(0, currentLength - suffix), end: undefined };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? undefined : Number(m[2]);
  if (!Number.isSafeInteger(start) || (end !== undefined && (!Number.isSafeInteger(end) || end < start))) return undefined;
  return { start, end };
}
