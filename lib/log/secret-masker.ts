// Replaces secret strings with `[*****]` in a byte stream cut into arbitrary chunks. A secret
// may straddle two (or more) chunks, so the end of a chunk that may be the start of a secret
// (at most `longest secret - 1` bytes) is held back until the next chunk (or the end) shows
// whether it is one: a secret printed a character at a time, however long the pauses, is
// masked all the same, while output that cannot start a secret is never held back (a live log
// does not lag behind a task that prints a line and waits).
// Each secret is also masked in base64 (what `echo $SECRET | base64` or a basic-auth header
// prints): the part of its encoding that does not depend on the bytes around it, for each of
// the three alignments, in standard and URL-safe alphabets. Secrets shorter than
// MIN_SECRET_LENGTH characters are not masked: they would hide too much ordinary text.
// Chunks are searched in place: only the few bytes around a chunk boundary are ever copied, and
// the output is a list of slices (for a vectored write), so masking costs no per-chunk copies.
export const MASK = '[*****]';
/** Secrets shorter than this many characters are not masked. */
export const MIN_SECRET_LENGTH = 6;
const MASK_BYTES = Buffer.from(MASK);
const EMPTY = Buffer.alloc(0);

/** Whether `secret` is long enough to be masked. */
export function isMaskable(secret: unknown): secret is string {
  return typeof secret === 'string' && [...secret].length >= MIN_SECRET_LENGTH;
}

/**
 * The strings masked for one secret: itself, then the stable middle of its base64 encoding at
 * byte offsets 0, 1 and 2 of a 3-byte group (standard and URL-safe alphabets). Only characters
 * whose 6 bits all come from the secret are kept, so each form matches wherever the secret
 * sits inside a longer encoded text. A multi-line secret is also masked as a terminal shows it
 * (a TTY turns "\n" into "\r\n", and task containers have one) and line by line (`head -1`
 * of a key file), each line long enough to be masked.
 */
export function maskedForms(secret: string): string[] {
  const bytes = Buffer.from(secret);
  const forms = new Set([secret]);
  if (secret.includes('\n')) {
    forms.add(secret.replace(/\r?\n/g, '\r\n'));
    for (const line of secret.split(/\r?\n/)) if (isMaskable(line)) forms.add(line);
  }
  for (let offset = 0; offset < 3; offset++) {
    const encoded = Buffer.concat([Buffer.alloc(offset), bytes]).toString('base64');
    const stable = encoded.slice(Math.ceil((8 * offset) / 6), Math.floor((8 * (offset + bytes.length)) / 6));
    forms.add(stable);
    forms.add(stable.replace(/\+/g, '-').replace(/\//g, '_'));
  }
  return [...forms];
}

interface Scan {
  pieces: Buffer[];
  /** Where scanning stopped: the end of the last match, or the scan start if none. */
  end: number;
}

export class SecretMasker {
  #secrets: Buffer[] = [];
  #longest = 0;
  /** Bytes some secret starts with, and pairs of bytes (first << 8 | second): only there may a held-back tail begin. */
  #firstBytes = new Uint8Array(256);
  #firstPairs = new Uint8Array(65536);
  #carry: Buffer = EMPTY;

  constructor(secrets: Iterable<string> = []) {
    this.add(secrets);
  }

  /** Adds secrets to mask from now on (and their base64 forms). Shorter than MIN_SECRET_LENGTH: ignored. */
  add(secrets: Iterable<string>): void {
    for (const secret of secrets) {
      if (!isMaskable(secret)) continue;
      for (const form of maskedForms(secret)) {
        const bytes = Buffer.from(form);
        if (this.#secrets.some((known) => known.equals(bytes))) continue;
        this.#secrets.push(bytes);
        this.#longest = Math.max(this.#longest, bytes.length);
        this.#firstBytes[bytes[0]!] = 1;
        this.#firstPairs[(bytes[0]! << 8) | bytes[1]!] = 1;
      }
    }
    // Longest first, so that when two secrets match at the same place the longer one wins.
    this.#secrets.sort((a, b) => b.length - a.length);
  }

  get hasSecrets(): boolean {
    return this.#secrets.length > 0;
  }

  /** Masks a chunk; returns the slices that are safe to write now (possibly none). */
  push(chunk: Buffer): Buffer[] {
    if (!this.hasSecrets) return [chunk];
    const hold = this.#longest - 1;
    const out: Buffer[] = [];
    let from = 0;
    if (this.#carry.length > 0) {
      if (chunk.length < hold) {
        // Too short to settle the held-back bytes: treat carry + chunk as the new carry.
        return this.#settle(Buffer.concat([this.#carry, chunk]), 0, out);
      }
      // Matches starting in the held-back bytes end within `hold` bytes of this chunk.
      const carried = this.#carry.length;
      const head = Buffer.concat([this.#carry, chunk.subarray(0, hold)]);
      const scan = this.#scan(head, 0, carried);
      out.push(...scan.pieces);
      if (scan.end < carried) out.push(head.subarray(scan.end, carried));
      from = Math.max(0, scan.end - carried);
    }
    return this.#settle(chunk, from, out);
  }

  /** Masks and returns whatever was held back; call once at the end of the stream. */
  flush(): Buffer[] {
    const data = this.#carry;
    this.#carry = EMPTY;
    if (data.length === 0) return [];
    const scan = this.#scan(data, 0, data.length);
    return [...scan.pieces, data.subarray(scan.end)];
  }

  /** Masks `data` from `from`, keeps the undecidable tail as the new carry. */
  #settle(data: Buffer, from: number, out: Buffer[]): Buffer[] {
    // A match is only decided where the longest secret would fit after its start: a shorter
    // secret may be the prefix of a longer one that continues in the next chunk.
    const undecided = data.length - (this.#longest - 1);
    const scan = this.#scan(data, from, undecided);
    out.push(...scan.pieces);
    // Bytes after the last match that may be the start of a secret cut by the chunk boundary
    // (or of one wholly in the undecided tail, which the next chunk may still lengthen).
    const safeEnd = this.#heldFrom(data, Math.max(scan.end, undecided));
    if (safeEnd > scan.end) out.push(data.subarray(scan.end, safeEnd));
    this.#carry = safeEnd < data.length ? Buffer.from(data.subarray(safeEnd)) : EMPTY;
    // Many masks make many tiny slices; one buffer is cheaper to hold and to write then.
    return out.length > 32 ? [Buffer.concat(out)] : out;
  }

  /** The first position at or after `from` where a secret may start (in full, or cut by the end of `data`); else data.length. */
  #heldFrom(data: Buffer, from: number): number {
    const last = data.length - 1;
    for (let p = from; p < data.length; p++) {
      if (p < last ? this.#firstPairs[(data[p]! << 8) | data[p + 1]!] === 0 : this.#firstBytes[data[p]!] === 0) continue;
      const rest = data.length - p;
      for (const secret of this.#secrets) {
        const n = Math.min(rest, secret.length);
        if (data.compare(secret, 0, n, p, p + n) === 0) return p;
      }
    }
    return data.length;
  }

  /** Finds, left to right, the secrets in `data` starting at or after `from`, before `startLimit`. */
  #scan(data: Buffer, from: number, startLimit: number): Scan {
    const pieces: Buffer[] = [];
    const secrets = this.#secrets;
    // Next occurrence of each secret at or after `pos`; each is searched for again only once
    // `pos` has passed it, so every secret scans the data once (linear, not per match).
    const next = secrets.map((secret) => data.indexOf(secret, from));
    let pos = from;
    for (;;) {
      let pick = -1;
      for (let i = 0; i < secrets.length; i++) {
        if (next[i] !== -1 && (pick === -1 || next[i] < next[pick])) pick = i;
      }
      if (pick === -1 || next[pick] >= startLimit) break;
      const matchAt = next[pick];
      if (matchAt > pos) pieces.push(data.subarray(pos, matchAt));
      pieces.push(MASK_BYTES);
      pos = matchAt + secrets[pick].length;
      for (let i = 0; i < secrets.length; i++) {
        if (next[i] !== -1 && next[i] < pos) next[i] = data.indexOf(secrets[i], pos);
      }
    }
    return { pieces, end: pos };
  }
}
