// Image tarballs come as `.tar`, `.tar.gz`, `.tar.zst` or `.tar.lz4`. The format is decided
// by the first bytes of the data (magic numbers), the path's suffix only breaking a tie
// (a tar without the ustar magic). Decompression streams: gzip and zstd with node's zlib,
// lz4 by piping through the `lz4` program (Debian's `lz4` package), which reads the lz4
// frame format as a stream; no npm package does that both well-kept and without native
// build steps.
import { spawn } from 'node:child_process';
import { Duplex, PassThrough, Readable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream';
import zlib from 'node:zlib';

export type TarballFormat = 'tar' | 'gzip' | 'zstd' | 'lz4';

/** Bytes needed to recognise every format (the ustar magic sits at offset 257). */
export const SNIFF_BYTES = 262;

const GZIP = Buffer.from([0x1f, 0x8b]);
const ZSTD = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
const LZ4_FRAME = Buffer.from([0x04, 0x22, 0x4d, 0x18]);
const LZ4_LEGACY = Buffer.from([0x02, 0x21, 0x4c, 0x18]);

/** Data that is none of the supported formats; the message says what was expected. */
export class UnsupportedFormat extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsupportedFormat';
  }
}

/** The format a path's suffix promises, if any. */
export function formatFromPath(path: string): TarballFormat | undefined {
  const p = path.toLowerCase();
  if (/\.(tar\.gz|tgz)$/.test(p)) return 'gzip';
  if (/\.(tar\.zst|tar\.zstd|tzst)$/.test(p)) return 'zstd';
  if (/\.(tar\.lz4|tlz4)$/.test(p)) return 'lz4';
  if (p.endsWith('.tar')) return 'tar';
  return undefined;
}

function isTarHeader(head: Buffer): boolean {
  if (head.length >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar') return true;
  // A pre-POSIX (v7) tar has no magic: check the header checksum of the first block.
  if (head.length < 512) return false;
  const stored = Number.parseInt(head.subarray(148, 156).toString('latin1').replace(/\0.*$/s, '').trim(), 8);
  if (!Number.isFinite(stored)) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : head[i]!;
  return sum === stored;
}

/** The format of data starting with `head`; `path` is a hint for data that has no magic. */
export function detectFormat(path: string, head: Buffer): TarballFormat {
  if (head.subarray(0, 2).equals(GZIP)) return 'gzip';
  if (head.subarray(0, 4).equals(ZSTD)) return 'zstd';
  if (head.subarray(0, 4).equals(LZ4_FRAME) || head.subarray(0, 4).equals(LZ4_LEGACY)) return 'lz4';
  if (isTarHeader(head)) return 'tar';
  const promised = formatFromPath(path);
  if (promised === 'tar' && head.length >= 262) {
    throw new UnsupportedFormat(`${path} is named like a tar archive, but its data is not a tar archive`);
  }
  if (promised === 'tar' || (promised === undefined && head.length === 0)) return 'tar';
  if (promised) throw new UnsupportedFormat(`${path} is named like a ${describe(promised)} file, but its data is not one`);
  throw new UnsupportedFormat(`${path} is neither a tar archive nor a gzip, zstd or lz4 compressed one (use .tar, .tar.gz, .tar.zst or .tar.lz4)`);
}

export function describe(format: TarballFormat): string {
  return { tar: 'tar', gzip: 'gzip', zstd: 'zstd', lz4: 'lz4' }[format];
}

/** An lz4 decompressor: the `lz4` program as a stream; fails with its message on bad input. */
function lz4Decompressor(): Duplex {
  const child = spawn('lz4', ['-d', '-c', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const out = new PassThrough();
  let stderr = '';
  let spawnError: Error | undefined;
  child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr = (stderr + s).slice(-2000); });
  child.on('error', (err: NodeJS.ErrnoException) => {
    spawnError = err.code === 'ENOENT'
      ? new UnsupportedFormat('this worker cannot read .tar.lz4 images: the lz4 program is not installed (Debian package lz4)')
      : err;
    out.destroy(spawnError);
  });
  child.stdout.pipe(out, { end: false });
  child.on('close', (code, signal) => {
    if (spawnError) return;
    if (code === 0) out.end();
    else out.destroy(new Error(`lz4: ${stderr.trim().split('\n').pop() || `exited with ${signal ?? code}`}`));
  });
  child.stdin.on('error', () => { /* the close handler reports why lz4 stopped reading */ });
  const duplex = Duplex.from({ writable: child.stdin, readable: out });
  duplex.on('close', () => { if (child.exitCode === null) child.kill('SIGKILL'); });
  return duplex;
}

const CHUNK = 1 << 20;

function decompressorFor(format: TarballFormat): Duplex | Transform | undefined {
  switch (format) {
    case 'tar': return undefined;
    // 1 MiB output chunks: zlib's 16 KiB default made a 200 MB image cost ~5x the CPU (GC,
    // and as many tar-stream and engine writes).
    case 'gzip': return zlib.createGunzip({ chunkSize: CHUNK });
    case 'zstd': return zlib.createZstdDecompress({ chunkSize: CHUNK });
    case 'lz4': return lz4Decompressor();
  }
}

/**
 * A stream that takes the artifact's bytes and gives the tar archive inside. `onFormat` hears
 * the detected format once the first bytes are in. Bad data makes the stream fail with the
 * decompressor's own message (e.g. "unexpected end of file" for a truncated gzip).
 */
export function decompressStream(path: string, onFormat?: (format: TarballFormat) => void): Duplex {
  return Duplex.from(async function* (source: AsyncIterable<Buffer>) {
    const it = source[Symbol.asyncIterator]();
    const head: Buffer[] = [];
    let length = 0;
    let ended = false;
    while (length < 512) {
      const r = await it.next();
      if (r.done) { ended = true; break; }
      head.push(r.value);
      length += r.value.length;
    }
    const first = Buffer.concat(head);
    const format = detectFormat(path, first);
    onFormat?.(format);
    const rest = async function* (): AsyncGenerator<Buffer> {
      if (first.length) yield first;
      if (ended) return;
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        yield r.value;
      }
    };
    const inner = decompressorFor(format);
    if (!inner) {
      yield* rest();
      return;
    }
    pipeline(Readable.from(rest()), inner, (err) => { if (err) inner.destroy(err); });
    for await (const chunk of inner) yield chunk as Buffer;
  });
}
