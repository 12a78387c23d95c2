// The engine's multiplexed output (a container without a TTY): frames of
// [stream, 0, 0, 0, size (4 bytes, big endian)] + size bytes, stdout and stderr merged here.
// One splitter for every reader of it (the attach socket, followed and whole logs): it keeps
// its place across reads, headers split between two reads included, and hands on pieces of
// the read itself (no copy), each byte once.
const FRAME_HEADER_BYTES = 8;

export class FrameSplitter {
  #header = Buffer.alloc(FRAME_HEADER_BYTES);
  #headerUsed = 0;
  #left = 0;

  /** Hands the payload in `data` to `take`, in order; false when a take asked to wait (it still got all of it). */
  push(data: Buffer, take: (payload: Buffer) => boolean): boolean {
    let more = true;
    for (let at = 0; at < data.length;) {
      if (this.#left === 0) {
        const n = Math.min(FRAME_HEADER_BYTES - this.#headerUsed, data.length - at);
        data.copy(this.#header, this.#headerUsed, at, at + n);
        this.#headerUsed += n;
        at += n;
        if (this.#headerUsed === FRAME_HEADER_BYTES) {
          this.#left = this.#header.readUInt32BE(4);
          this.#headerUsed = 0;
        }
        continue;
      }
      const n = Math.min(this.#left, data.length - at);
      if (!take(data.subarray(at, at + n))) more = false;
      this.#left -= n;
      at += n;
    }
    return more;
  }
}
