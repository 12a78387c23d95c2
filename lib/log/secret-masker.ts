// Replaces secret strings with `[*****]` in a byte stream cut into arbitrary chunks. A secret
// may straddle two (or more) chunks, so the last `longest secret - 1` bytes of each chunk are
// held back until the next chunk (or the end) shows whether they start a secret.
export const MASK = '[*****]';
const MASK_BYTES = Buffer.from(MASK);

export class SecretMasker {
  #secrets: Buffer[] = [];
  #longest = 0;
  #carry: Buffer = Buffer.alloc(0);

  constructor(secrets: Iterable<string> = []) {
    this.add(secrets);
  }

  /** Adds secrets to mask from now on. Empty strings are ignored. */
  add(secrets: Iterable<string>): void {
    for (const secret of secrets) {
      if (typeof secret !== 'string' || secret.length === 0) continue;
      const bytes = Buffer.from(secret);
      if (this.#secrets.some((known) => known.equals(bytes))) continue;
      this.#secrets.push(bytes);
      this.#longest = Math.max(this.#longest, bytes.length);
    }
    // Longest first, so that when two secrets match at the same place the longer one wins.
    this.#secrets.sort((a, b) => b.length - a.length);
  }

  get hasSecrets(): boolean {
    return this.#secrets.length > 0;
  }

  /** Masks a chunk; returns the bytes that are safe to write now (possibly empty). */
  push(chunk: Buffer): Buffer {
    if (!this.hasSecrets) return chunk;
    const data = this.#carry.length > 0 ? Buffer.concat([this.#carry, chunk]) : chunk;
    const { pieces, consumed } = this.#mask(data, false);
    this.#carry = Buffer.from(data.subarray(consumed));
    return pieces.length === 1 ? pieces[0] : Buffer.concat(pieces);
  }

  /** Masks and returns whatever was held back; call once at the end of the stream. */
  flush(): Buffer {
    const data = this.#carry;
    this.#carry = Buffer.alloc(0);
    if (data.length === 0) return data;
    const { pieces } = this.#mask(data, true);
    return Buffer.concat(pieces);
  }

  #mask(data: Buffer, final: boolean): { pieces: Buffer[]; consumed: number } {
    const pieces: Buffer[] = [];
    let pos = 0;
    for (;;) {
      let matchAt = -1;
      let matchLength = 0;
      for (const secret of this.#secrets) {
        const at = data.indexOf(secret, pos);
        if (at !== -1 && (matchAt === -1 || at < matchAt)) {
          matchAt = at;
          matchLength = secret.length;
        }
      }
      if (matchAt === -1) break;
      pieces.push(data.subarray(pos, matchAt), MASK_BYTES);
      pos = matchAt + matchLength;
    }
    // Bytes after the last match that could still be the start of a secret cut by the chunk
    // boundary are held back (unless this is the end of the stream).
    const safeEnd = final ? data.length : Math.max(pos, data.length - (this.#longest - 1));
    pieces.push(data.subarray(pos, safeEnd));
    return { pieces, consumed: safeEnd };
  }
}
