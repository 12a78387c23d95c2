// What a task owner sees when the image is an artifact: `task-image` and `indexed-image` in
// every tarball format, private artifacts and their scope, bad tarballs failing with one
// sentence and leaving nothing behind, and the second use of an artifact (or a concurrent
// one) sharing the first download. Real worker, real engine, embedded deployment.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import taskcluster from 'taskcluster-client';
import { WorkerHarness } from '../support/worker.ts';
import { testEngine } from '../support/docker.ts';
import { localRepository } from '../../lib/images/local-name.ts';
import { buildImageFiles, publishProducerTask, sha256File, type ImageFiles } from '../images/image-fixtures.ts';

const engine = testEngine();
let h: WorkerHarness;
let files: ImageFiles;
let producer: string;

before(async () => {
  files = await buildImageFiles();
  h = await WorkerHarness.start({ config: { capacity: 2 } });
  const { rootUrl, credentials } = h.embedded;
  producer = await publishProducerTask(rootUrl, credentials, [
    { name: 'public/image.tar', file: files.tar },
    { name: 'public/image.tar.gz', file: files.gz },
    { name: 'public/image.tar.zst', file: files.zst },
    { name: 'public/image.tar.lz4', file: files.lz4 },
    { name: 'public/legacy.tar', file: files.legacy },
    { name: 'public/s3/image.tar', file: files.tar, storageType: 's3' },
    { name: 'public/shared/image.tar.gz', file: files.gz },
    { name: 'public/two-images.tar', file: files.twoImages },
    { name: 'public/truncated.tar.gz', file: files.truncatedGz },
    { name: 'private/image.tar.zst', file: files.zst },
  ]);
});

after(async () => {
  await h?.stop();
  if (producer) {
    const ours = `task-image/${producer.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '')}/`;
    for (const image of await engine.listImages()) {
      for (const tag of image.repoTags.filter((t) => t.startsWith(ours))) await engine.removeImage(tag);
    }
  }
  files?.remove();
});

const run = (image: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  h.submit({ image, command: ['taskhost-who', 'ran', 'from', 'artifact'], maxRunTime: 60 }, extra);

async function tagsOf(path: string): Promise<string[]> {
  const repository = localRepository({ taskId: producer, path });
  return (await engine.listImages()).flatMap((i) => i.repoTags).filter((t) => t.startsWith(`${repository}:`));
}

for (const [path, file, format] of [
  ['public/image.tar', () => files.tar, 'tar'],
  ['public/image.tar.gz', () => files.gz, 'gzip'],
  ['public/image.tar.zst', () => files.zst, 'zstd'],
  ['public/image.tar.lz4', () => files.lz4, 'lz4'],
  ['public/legacy.tar', () => files.legacy, 'tar'],
] as const) {
  test(`a task-image from ${path} is downloaded, loaded under its own name and runs`, async () => {
    const taskId = await run({ type: 'task-image', taskId: producer, path });
    const status = await h.waitForResolution(taskId);
    const log = await h.taskLog(taskId);
    assert.equal(status.state, 'completed', log);
    assert.match(log, /^ran from artifact\r?$/m);
    assert.match(log, new RegExp(`Downloading image artifact ${path} of task ${producer}`));
    assert.match(log, new RegExp(`${format} data, sha256:[0-9a-f]{64}; loading it into Docker`));
    const [loaded] = h.events('image loaded', taskId);
    assert.ok(loaded, 'an image loaded event');
    const digest = sha256File(file());
    assert.equal(loaded.digest, digest);
    assert.equal(loaded.format, format);
    assert.equal(loaded.bytes, (await import('node:fs')).statSync(file()).size);
    assert.equal(typeof loaded.ms, 'number');
    const expectedName = `${localRepository({ taskId: producer, path })}:${digest.slice(7, 19)}`;
    assert.equal(loaded.name, expectedName);
    assert.deepEqual(await tagsOf(path), [expectedName], 'the image carries only the worker\'s name');
    assert.match(log, new RegExp(`Loaded image ${expectedName.replace(/[/.]/g, '\\$&')}`));
  });
}

test('the second task using the same artifact neither downloads nor loads it again', async () => {
  const first = await run({ type: 'task-image', taskId: producer, path: 'public/image.tar.zst' });
  assert.equal((await h.waitForResolution(first)).state, 'completed');
  const second = await run({ type: 'task-image', taskId: producer, path: 'public/image.tar.zst' });
  assert.equal((await h.waitForResolution(second)).state, 'completed');
  assert.equal(h.events('image download started', second).length, 0);
  assert.equal(h.events('image loaded', second).length, 0);
  const [reused] = h.events('image reused', second);
  assert.equal(reused?.digest, sha256File(files.zst));
  assert.match(await h.taskLog(second), /loaded earlier from the artifact public\/image\.tar\.zst/);
});

test('an indexed-image is found through the index; gzip content-encoding on the wire is undone', async () => {
  const namespace = `project.test.images.${taskcluster.slugid().toLowerCase().replace(/[^a-z0-9]/g, '')}`;
  const index = new taskcluster.Index({ rootUrl: h.embedded.rootUrl, credentials: h.embedded.credentials });
  await index.insertTask(namespace, { taskId: producer, rank: 1, data: {}, expires: taskcluster.fromNow('1 day').toISOString() });
  const taskId = await run({ type: 'indexed-image', namespace, path: 'public/s3/image.tar' });
  const status = await h.waitForResolution(taskId);
  const log = await h.taskLog(taskId);
  assert.equal(status.state, 'completed', log);
  assert.match(log, new RegExp(`indexed at ${namespace.replace(/\./g, '\\.')}`));
  const [loaded] = h.events('image loaded', taskId);
  assert.equal(loaded?.digest, sha256File(files.tar), 'the digest is of the artifact, not of its gzip encoding');
});

test('an unknown index namespace fails the task with a plain message', async () => {
  const taskId = await run({ type: 'indexed-image', namespace: 'project.test.images.nothing-here', path: 'public/image.tar' });
  assert.equal((await h.waitForResolution(taskId)).state, 'failed');
  assert.match(await h.taskLog(taskId), /No task is indexed at project\.test\.images\.nothing-here/);
});

test('a private image artifact needs queue:get-artifact:<path> in the task scopes', async () => {
  const denied = await run({ type: 'task-image', taskId: producer, path: 'private/image.tar.zst' });
  const deniedStatus = await h.waitForResolution(denied);
  const deniedLog = await h.taskLog(denied);
  assert.equal(deniedStatus.state, 'failed');
  assert.match(deniedLog, /Not authorized to use the image artifact private\/image\.tar\.zst .*queue:get-artifact:private\/image\.tar\.zst/);
  assert.doesNotMatch(deniedLog, /^ran from artifact/m);
  assert.equal(h.events('image download started', denied).length, 0);

  const allowed = await run({ type: 'task-image', taskId: producer, path: 'private/image.tar.zst' }, { scopes: ['queue:get-artifact:private/image.tar.zst'] });
  const allowedStatus = await h.waitForResolution(allowed);
  const allowedLog = await h.taskLog(allowed);
  assert.equal(allowedStatus.state, 'completed', allowedLog);
  assert.match(allowedLog, /^ran from artifact\r?$/m);
});

test('a tarball holding two images fails the task with one sentence and loads nothing', async () => {
  const taskId = await run({ type: 'task-image', taskId: producer, path: 'public/two-images.tar' });
  assert.equal((await h.waitForResolution(taskId)).state, 'failed');
  const log = await h.taskLog(taskId);
  assert.match(log, /Error: The image artifact public\/two-images\.tar of task \S+ holds 2 images \(taskenv_fail:latest, taskenv_pass:latest\); an image artifact must hold exactly one image, as docker save of one image writes it\.\r?$/m);
  assert.deepEqual(await tagsOf('public/two-images.tar'), []);
  assert.equal(h.events('image download started', taskId).length, 1, 'a bad tarball is not retried');
});

test('a truncated download fails the task with its cause and leaves no image behind', async () => {
  const dangling = async () => new Set((await engine.listImages()).filter((i) => i.repoTags.length === 0).map((i) => i.id));
  const danglingBefore = await dangling();
  const taskId = await run({ type: 'task-image', taskId: producer, path: 'public/truncated.tar.gz' });
  assert.equal((await h.waitForResolution(taskId)).state, 'failed');
  const log = await h.taskLog(taskId);
  assert.match(log, /The image artifact public\/truncated\.tar\.gz of task \S+ is corrupt or truncated: unexpected end of file\./);
  assert.deepEqual(await tagsOf('public/truncated.tar.gz'), []);
  assert.equal(h.events('image loaded', taskId).length, 0);
  assert.deepEqual([...await dangling()].filter((id) => !danglingBefore.has(id)), [], 'no dangling image was left');
});

test('a missing artifact fails at once, naming the path', async () => {
  const taskId = await run({ type: 'task-image', taskId: producer, path: 'public/no-such-image.tar' });
  assert.equal((await h.waitForResolution(taskId)).state, 'failed');
  assert.match(await h.taskLog(taskId), new RegExp(`Task ${producer} has no artifact public/no-such-image\\.tar`));
});

test('two concurrent tasks using the same new artifact share one download', async () => {
  const image = { type: 'task-image', taskId: producer, path: 'public/shared/image.tar.gz' };
  const [a, b] = await Promise.all([run(image), run(image)]);
  const [sa, sb] = await Promise.all([h.waitForResolution(a), h.waitForResolution(b)]);
  assert.equal(sa.state, 'completed');
  assert.equal(sb.state, 'completed');
  const started = h.capture.events.filter((e) => e.message === 'image download started' && e.path === 'public/shared/image.tar.gz');
  assert.equal(started.length, 1);
  const reused = [...h.events('image reused', a), ...h.events('image reused', b)];
  assert.equal(reused.length, 1, 'the other task reused the one download');
});
