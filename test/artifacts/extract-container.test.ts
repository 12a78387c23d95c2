// Extraction from a real container's archive (Docker engine, taskenv_pass image).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { buffer } from 'node:stream/consumers';
import { extractArtifactEntries, ArtifactTypeError } from '../../lib/artifacts/extract.ts';
import { EngineError } from '../../lib/docker/engine-error.ts';
import { testEngine, testWorkerId, removeOwnedBy, TASKENV_PASS } from '../support/docker.ts';

const engine = testEngine();
const workerId = testWorkerId('extract');
let container = '';

before(async () => {
  container = await engine.createContainer({
    Image: TASKENV_PASS,
    Cmd: ['/bin/sh', '-c', [
      'mkdir -p /out/sub/deeper /out/emptydir',
      'echo A > /out/a.txt',
      'echo B > /out/sub/deeper/b.log',
      'ln -s a.txt /out/link',
      'head -c 3000000 /dev/zero > /out/big.bin',
      'echo single > /single.txt',
    ].join(' && ')],
  }, { workerId });
  await engine.startContainer(container);
  const { exitCode } = await engine.waitContainer(container);
  assert.equal(exitCode, 0);
});

after(() => removeOwnedBy(engine, workerId));

test('a directory of a stopped container becomes name/<relative path> files', async () => {
  const files: Record<string, Buffer> = {};
  const skipped: string[] = [];
  for await (const item of extractArtifactEntries(await engine.getArchive(container, '/out'), { name: 'public/out', type: 'directory' })) {
    if (item.kind === 'entry') files[item.name] = await buffer(item.stream);
    else skipped.push(item.name);
  }
  assert.deepEqual(Object.keys(files).sort(), ['public/out/a.txt', 'public/out/big.bin', 'public/out/sub/deeper/b.log']);
  assert.equal(files['public/out/a.txt'].toString(), 'A\n');
  assert.equal(files['public/out/sub/deeper/b.log'].toString(), 'B\n');
  assert.equal(files['public/out/big.bin'].length, 3000000);
  assert.deepEqual(skipped, ['public/out/link']);
});

test('a single file of a container becomes one artifact', async () => {
  const items = [];
  for await (const item of extractArtifactEntries(await engine.getArchive(container, '/single.txt'), { name: 'public/single.txt', type: 'file' })) {
    assert.equal(item.kind, 'entry');
    if (item.kind === 'entry') items.push([item.name, (await buffer(item.stream)).toString('utf8')]);
  }
  assert.deepEqual(items, [['public/single.txt', 'single\n']]);
});

test('a container directory declared as a file is a type error', async () => {
  await assert.rejects(async () => {
    for await (const _ of extractArtifactEntries(await engine.getArchive(container, '/out'), { name: 'public/out', type: 'file' })) { /* none */ }
  }, (err: unknown) => err instanceof ArtifactTypeError && /Expected artifact to be a "file" but was "directory"/.test(err.message));
});

test('a missing path is a not-found from the engine', async () => {
  await assert.rejects(engine.getArchive(container, '/nope'), (err: unknown) => err instanceof EngineError && err.kind === 'not-found');
});
