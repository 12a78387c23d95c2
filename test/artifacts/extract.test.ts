import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Readable, Writable } from 'node:stream';
import { text } from 'node:stream/consumers';
import tarStream from 'tar-stream';
import { extractArtifactEntries, ArtifactTypeError, type ExtractedEntry } from '../../lib/artifacts/extract.ts';

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

/** Collects what the extractor hands out, reading each file's stream before the next. */
async function collect(items: AsyncIterable<ExtractedEntry>) {
  const files: Record<string, string> = {};
  const skipped: string[] = [];
  for await (const item of items) {
    if (item.kind === 'entry') files[item.name] = await text(item.stream);
    else skipped.push(`${item.name} (${item.entryType})`);
  }
  return { files, skipped };
}

test('a file artifact is one file under the artifact name', async () => {
  const out = await collect(extractArtifactEntries(tarOf([{ name: 'result.txt', body: 'it worked\n' }]),
    { name: 'public/result.txt', type: 'file' }));
  assert.deepEqual(out.files, { 'public/result.txt': 'it worked\n' });
});

test('a directory artifact names every regular file by its relative path, nested dirs included', async () => {
  const out = await collect(extractArtifactEntries(tarOf([
    { name: 'build/', type: 'directory' },
    { name: 'build/a.txt', body: 'A' },
    { name: 'build/sub/', type: 'directory' },
    { name: 'build/sub/deeper/', type: 'directory' },
    { name: 'build/sub/deeper/b.log', body: 'B' },
    { name: 'build/link', type: 'symlink', linkname: 'a.txt' },
    { name: 'build/empty', body: '' },
  ]), { name: 'public/build', type: 'directory' }));
  assert.deepEqual(out.files, { 'public/build/a.txt': 'A', 'public/build/sub/deeper/b.log': 'B', 'public/build/empty': '' });
  assert.deepEqual(out.skipped, ['public/build/link (symlink)']);
});

test('a directory where a file was declared is a typed error with a plain message', async () => {
  await assert.rejects(
    collect(extractArtifactEntries(tarOf([{ name: 'out/', type: 'directory' }, { name: 'out/x', body: 'x' }]),
      { name: 'public/out', type: 'file' })),
    (err: unknown) => err instanceof ArtifactTypeError && err.reason === 'invalid-resource-on-worker'
      && err.message === 'Error uploading "public/out". Expected artifact to be a "file" but was "directory"');
});

test('a file where a directory was declared is a typed error', async () => {
  await assert.rejects(
    collect(extractArtifactEntries(tarOf([{ name: 'out.txt', body: 'x' }]), { name: 'public/out', type: 'directory' })),
    /Expected artifact to be a "directory" but was "file"/);
});

test('a symlink declared as a file is reported as a symlink', async () => {
  await assert.rejects(
    collect(extractArtifactEntries(tarOf([{ name: 'latest', type: 'symlink', linkname: 'x' }]), { name: 'public/latest', type: 'file' })),
    /Expected artifact to be a "file" but was "symlink"/);
});

test('entries that try to leave the directory are skipped', async () => {
  const out = await collect(extractArtifactEntries(tarOf([
    { name: 'd/', type: 'directory' }, { name: 'd/../../etc/passwd', body: 'no' }, { name: 'd/ok', body: 'ok' },
  ]), { name: 'public/d', type: 'directory' }));
  assert.deepEqual(out.files, { 'public/d/ok': 'ok' });
  assert.equal(out.skipped.length, 1);
});

test('a large file streams through, not into memory', async () => {
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
  for await (const item of extractArtifactEntries(pack as unknown as Readable, { name: 'public/big.bin', type: 'file' })) {
    assert.equal(item.kind, 'entry');
    if (item.kind === 'entry') for await (const chunk of item.stream) seen += (chunk as Buffer).length;
  }
  assert.equal(seen, size);
  assert.ok(process.memoryUsage().arrayBuffers - before < 32 * 1024 * 1024);
});

test('stopping early closes the source', async () => {
  const source = tarOf([{ name: 'd/', type: 'directory' }, { name: 'd/1', body: '1' }, { name: 'd/2', body: '2' }]);
  for await (const item of extractArtifactEntries(source, { name: 'p/d', type: 'directory' })) {
    assert.equal(item.kind, 'entry');
    break;
  }
  assert.ok(source.destroyed);
});
