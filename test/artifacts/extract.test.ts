import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, mkdtemp, stat } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import path from 'node:path';
import os from 'node:os';
import tarStream from 'tar-stream';
import { extractArtifactFiles, ArtifactTypeError, type ExtractedItem } from '../../lib/artifacts/extract.ts';

type Entry = { name: string; type?: 'file' | 'directory' | 'symlink' | 'link'; body?: string | Buffer; linkname?: string };

function tarOf(entries: Entry[]): Readable {
  const pack = tarStream.pack();
  for (const e of entries) {
    const type = e.type ?? 'file';
    if (type === 'file') pack.entry({ name: e.name, type }, e.body ?? '');
    else pack.entry({ name: e.name, type, linkname: e.linkname });
  }
  pack.finalize();
  return pack as unknown as Readable;
}

/** Collects what the extractor hands out, reading each file while it exists. */
async function collect(items: AsyncIterable<ExtractedItem>) {
  const files: Record<string, string> = {};
  const skipped: string[] = [];
  const paths: string[] = [];
  for await (const item of items) {
    if (item.kind === 'file') { files[item.name] = await readFile(item.filePath, 'utf8'); paths.push(item.filePath); }
    else skipped.push(`${item.name} (${item.entryType})`);
  }
  return { files, skipped, paths };
}

async function tmp(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), 'extract-test-'));
}

test('a file artifact is one file under the artifact name', async () => {
  const dir = await tmp();
  const out = await collect(extractArtifactFiles(tarOf([{ name: 'result.txt', body: 'it worked\n' }]),
    { name: 'public/result.txt', type: 'file' }, { tmpDir: dir }));
  assert.deepEqual(out.files, { 'public/result.txt': 'it worked\n' });
  assert.deepEqual(await readdir(dir), [], 'temp files are removed');
});

test('a directory artifact names every regular file by its relative path, nested dirs included', async () => {
  const dir = await tmp();
  const out = await collect(extractArtifactFiles(tarOf([
    { name: 'build/', type: 'directory' },
    { name: 'build/a.txt', body: 'A' },
    { name: 'build/sub/', type: 'directory' },
    { name: 'build/sub/deeper/', type: 'directory' },
    { name: 'build/sub/deeper/b.log', body: 'B' },
    { name: 'build/link', type: 'symlink', linkname: 'a.txt' },
    { name: 'build/empty', body: '' },
  ]), { name: 'public/build', type: 'directory' }, { tmpDir: dir }));
  assert.deepEqual(out.files, { 'public/build/a.txt': 'A', 'public/build/sub/deeper/b.log': 'B', 'public/build/empty': '' });
  assert.deepEqual(out.skipped, ['public/build/link (symlink)']);
  for (const p of out.paths) await assert.rejects(stat(p), { code: 'ENOENT' });
  assert.deepEqual(await readdir(dir), []);
});

test('a directory where a file was declared is a typed error with a plain message', async () => {
  const dir = await tmp();
  await assert.rejects(
    collect(extractArtifactFiles(tarOf([{ name: 'out/', type: 'directory' }, { name: 'out/x', body: 'x' }]),
      { name: 'public/out', type: 'file' }, { tmpDir: dir })),
    (err: unknown) => err instanceof ArtifactTypeError && err.reason === 'invalid-resource-on-worker'
      && err.message === 'Error uploading "public/out". Expected artifact to be a "file" but was "directory"');
  assert.deepEqual(await readdir(dir), []);
});

test('a file where a directory was declared is a typed error', async () => {
  await assert.rejects(
    collect(extractArtifactFiles(tarOf([{ name: 'out.txt', body: 'x' }]), { name: 'public/out', type: 'directory' })),
    /Expected artifact to be a "directory" but was "file"/);
});

test('a symlink declared as a file is reported as a symlink', async () => {
  await assert.rejects(
    collect(extractArtifactFiles(tarOf([{ name: 'latest', type: 'symlink', linkname: 'x' }]), { name: 'public/latest', type: 'file' })),
    /Expected artifact to be a "file" but was "symlink"/);
});

test('entries that try to leave the directory are skipped', async () => {
  const out = await collect(extractArtifactFiles(tarOf([
    { name: 'd/', type: 'directory' }, { name: 'd/../../etc/passwd', body: 'no' }, { name: 'd/ok', body: 'ok' },
  ]), { name: 'public/d', type: 'directory' }));
  assert.deepEqual(out.files, { 'public/d/ok': 'ok' });
  assert.equal(out.skipped.length, 1);
});

test('a large file goes through a temp file, not memory', async () => {
  const size = 96 * 1024 * 1024;
  const pack = tarStream.pack();
  const entry = pack.entry({ name: 'big.bin', size, type: 'file' }) as unknown as Writable;
  (async () => {
    const chunk = Buffer.alloc(1024 * 1024, 7);
    for (let n = 0; n < size; n += chunk.length) {
      if (!entry.write(chunk)) await new Promise((r) => entry.once('drain', r));
    }
    entry.end();
    pack.finalize();
  })();
  const before = process.memoryUsage().arrayBuffers;
  let seen = 0;
  for await (const item of extractArtifactFiles(pack as unknown as Readable, { name: 'public/big.bin', type: 'file' })) {
    assert.equal(item.kind, 'file');
    if (item.kind === 'file') seen = (await stat(item.filePath)).size;
  }
  assert.equal(seen, size);
  assert.ok(process.memoryUsage().arrayBuffers - before < 32 * 1024 * 1024);
});

test('stopping early still removes the temp files and closes the source', async () => {
  const dir = await tmp();
  const source = tarOf([{ name: 'd/', type: 'directory' }, { name: 'd/1', body: '1' }, { name: 'd/2', body: '2' }]);
  for await (const item of extractArtifactFiles(source, { name: 'p/d', type: 'directory' }, { tmpDir: dir })) {
    assert.equal(item.kind, 'file');
    break;
  }
  assert.deepEqual(await readdir(dir), []);
  assert.ok(source.destroyed);
});
