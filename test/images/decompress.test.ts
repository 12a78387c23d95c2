// Tarball formats: detected from the data's first bytes (the path only breaks ties), and
// decompressed as a stream, with the decompressor's own message for bad data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import tarStream from 'tar-stream';
import { decompressStream, detectFormat, formatFromPath, UnsupportedFormat } from '../../lib/images/decompress.ts';

async function tarOf(files: Record<string, string>): Promise<Buffer> {
  const pack = tarStream.pack();
  for (const [name, text] of Object.entries(files)) pack.entry({ name }, text);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function through(path: string, data: Buffer, chunkSize = 100): Promise<{ out: Buffer; format: string | undefined }> {
  let format: string | undefined;
  const chunks: Buffer[] = [];
  for (let i = 0; i < data.length; i += chunkSize) chunks.push(data.subarray(i, i + chunkSize));
  const out: Buffer[] = [];
  await pipeline(Readable.from(chunks), decompressStream(path, (f) => { format = f; }), async (source: AsyncIterable<Buffer>) => {
    for await (const c of source) out.push(c);
  });
  return { out: Buffer.concat(out), format };
}

test('the path suffix names a format', () => {
  assert.equal(formatFromPath('public/image.tar'), 'tar');
  assert.equal(formatFromPath('public/image.tar.gz'), 'gzip');
  assert.equal(formatFromPath('public/image.tgz'), 'gzip');
  assert.equal(formatFromPath('public/IMAGE.TAR.ZST'), 'zstd');
  assert.equal(formatFromPath('public/image.tar.lz4'), 'lz4');
  assert.equal(formatFromPath('public/image'), undefined);
});

test('magic bytes decide, whatever the name says', async () => {
  const tar = await tarOf({ 'manifest.json': '[]' });
  assert.equal(detectFormat('x.tar', tar), 'tar');
  assert.equal(detectFormat('x.tar', zlib.gzipSync(tar)), 'gzip');
  assert.equal(detectFormat('x.tar.gz', zlib.zstdCompressSync(tar)), 'zstd');
  assert.equal(detectFormat('image', Buffer.from([0x04, 0x22, 0x4d, 0x18, 0, 0])), 'lz4');
  assert.equal(detectFormat('image.tar.lz4', tar), 'tar');
});

test('data that is no supported format is refused with what was expected', () => {
  const junk = Buffer.alloc(600, 0x41);
  assert.throws(() => detectFormat('public/image.tar.gz', junk), (err: Error) => err instanceof UnsupportedFormat && /named like a gzip file, but its data is not one/.test(err.message));
  assert.throws(() => detectFormat('public/image.tar', junk), /named like a tar archive, but its data is not a tar archive/);
  assert.throws(() => detectFormat('public/image.bin', junk), /\.tar, \.tar\.gz, \.tar\.zst or \.tar\.lz4/);
});

test('gzip, zstd and lz4 data come out as the tar inside, in small chunks too', async () => {
  const tar = await tarOf({ 'a.txt': 'x'.repeat(5000), 'b.txt': 'hello' });
  const lz4 = execFileSync('lz4', ['-q', '-c'], { input: tar });
  for (const [path, data, format] of [
    ['i.tar', tar, 'tar'], ['i.tar.gz', zlib.gzipSync(tar), 'gzip'], ['i.tar.zst', zlib.zstdCompressSync(tar), 'zstd'], ['i.tar.lz4', lz4, 'lz4'],
  ] as const) {
    const { out, format: detected } = await through(path, data, 7);
    assert.equal(detected, format);
    assert.ok(out.equals(tar), `${format} round trip`);
  }
});

test('a truncated compressed stream fails with the decompressor\'s message', async () => {
  const tar = await tarOf({ 'a.txt': 'y'.repeat(100_000) });
  const gz = zlib.gzipSync(tar);
  await assert.rejects(through('i.tar.gz', gz.subarray(0, gz.length - 20)), /unexpected end of file/);
  const zst = zlib.zstdCompressSync(tar);
  await assert.rejects(through('i.tar.zst', zst.subarray(0, zst.length - 20)), /unexpected end of file/);
  const lz4 = execFileSync('lz4', ['-q', '-c'], { input: tar });
  await assert.rejects(through('i.tar.lz4', lz4.subarray(0, lz4.length - 20)), /^Error: lz4: /);
});
