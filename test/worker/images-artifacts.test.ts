// What a task owner sees when the image is an artifact: `task-image` and `indexed-image` (via
// a producer task indexed by its route) in every tarball format, private artifacts and their
// scope (directly or through a role), bad tarballs failing with one sentence and leaving
// nothing behind, storage trouble (401 at once, 5xx retried until it gives up), progress lines
// while a slow download runs, and the second use of an artifact (or a concurrent one) sharing
// the first download. Real worker, real engine, embedded deployment; a small storage server of
// the test's own stands in for slow or failing artifact storage (reference artifacts).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import taskcluster from 'taskcluster-client';
import { WorkerHarness } from '../support/worker.ts';
import { testEngine } from '../support/docker.ts';
import { localRepository } from '../../lib/images/local-name.ts';
import { buildImageFiles, publishProducerTask, sha256File, type ImageFiles } from '../images/image-fixtures.ts';

const engine = testEngine();
let h: WorkerHarness;
let files: ImageFiles;
let producer: string;
let storage: Server;
let storageUrl: string;
const storageHits = new Map<string, number>();
/** Opened by a test to let the gated download through. */
let openGate: () => void = () => {};
let gateOpened = new Promise<void>((r) => { openGate = r; });

before(async () => {
  files = await buildImageFiles();
  h = await WorkerHarness.start({ config: { capacity: 2 } });
  const { rootUrl, credentials } = h;
  const tar = readFileSync(files.tar);
  storage = createServer((req, res) => {
    const url = req.url ?? '';
    storageHits.set(url, (storageHits.get(url) ?? 0) + 1);
    if (url === '/denied.tar') { res.writeHead(401).end('AccessDenied'); return; }
    if (url === '/busy.tar') { res.writeHead(503).end('SlowDown'); return; }
    if (url === '/gated.tar') { void gateOpened.then(() => res.writeHead(200, { 'content-length': tar.length }).end(tar)); return; }
    if (url === '/slow.tar') {
      // About 6.5 s for the whole tarball: longer than the 5 s between progress lines.
      res.writeHead(200, { 'content-length': tar.length });
      const pieces = 16;
      let i = 0;
      const timer = setInterval(() => {
        const end = Math.ceil(((i + 1) * tar.length) / pieces);
        res.write(tar.subarray(Math.ceil((i * tar.length) / pieces), end));
        if (++i === pieces) { clearInterval(timer); res.end(); }
      }, 400);
      res.on('close', () => clearInterval(timer));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => storage.listen(0, '127.0.0.1', r));
  storageUrl = `http://127.0.0.1:${(storage.address() as { port: number }).port}`;
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
    { name: 'private/role/image.tar.gz', file: files.gz },
    { name: 'public/no-manifest.tar', file: files.noManifest },
    { name: 'public/denied.tar', reference: `${storageUrl}/denied.tar` },
    { name: 'public/busy.tar', reference: `${storageUrl}/busy.tar` },
    { name: 'public/gated.tar', reference: `${storageUrl}/gated.tar` },
    { name: 'public/slow.tar', reference: `${storageUrl}/slow.tar` },
  ]);
});

after(async () => {
  openGate();
  storage?.close();
  await h?.stop();
  if (producer) {
    const ours = [producer, ...routedProducers].map((p) => `task-image/${p.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '')}/`);
    for (const image of await engine.listImages()) {
      for (const tag of image.repoTags.filter((t) => ours.some((o) => t.startsWith(o)))) await engine.removeImage(tag);
    }
  }
  files?.remove();
});

const routedProducers: string[] = [];

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
  const index = new taskcluster.Index({ rootUrl: h.rootUrl, credentials: h.credentials });
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

test('an artifact with the same bytes as one loaded before is neither downloaded nor loaded, even by two tasks at once', async () => {
  // public/shared/image.tar.gz holds the same bytes as public/image.tar.gz, loaded above.
  const first = await run({ type: 'task-image', taskId: producer, path: 'public/image.tar.gz' });
  assert.equal((await h.waitForResolution(first)).state, 'completed');
  const image = { type: 'task-image', taskId: producer, path: 'public/shared/image.tar.gz' };
  const [a, b] = await Promise.all([run(image), run(image)]);
  const [sa, sb] = await Promise.all([h.waitForResolution(a), h.waitForResolution(b)]);
  assert.equal(sa.state, 'completed');
  assert.equal(sb.state, 'completed');
  const started = h.capture.events.filter((e) => e.message === 'image download started' && e.path === 'public/shared/image.tar.gz');
  assert.equal(started.length, 0, 'no download');
  const reused = [...h.events('image reused', a), ...h.events('image reused', b)];
  assert.equal(reused.length, 2);
  assert.ok(reused.some((e) => e.sameContentAs === `${producer}/0/public/image.tar.gz`), JSON.stringify(reused));
  assert.equal(new Set(reused.map((e) => e.digest)).size, 1);
  assert.equal(reused[0]!.digest, sha256File(files.gz));
  assert.deepEqual(await tagsOf('public/shared/image.tar.gz'), [`${localRepository({ taskId: producer, path: 'public/shared/image.tar.gz' })}:${sha256File(files.gz).slice(7, 19)}`],
    'the image carries this artifact\'s own name too');
});

test('two running tasks really share one download and load of a new artifact', async () => {
  const image = { type: 'task-image', taskId: producer, path: 'public/gated.tar' };
  const a = await run(image);
  const b = await run(image);
  // The download is held at the storage server until the second task has joined it.
  const joined = () => h.capture.events.find((e) => e.message === 'waiting for shared image' && e.path === 'public/gated.tar');
  for (let i = 0; i < 600 && !joined(); i++) await sleep(50);
  const joiner = joined();
  assert.ok(joiner, 'the second task joined the download under way');
  const states = await Promise.all([a, b].map(async (t) => (await h.queue.status(t)).status.state));
  assert.deepEqual(states, ['running', 'running'], 'both tasks were running while the one download ran');
  openGate();
  const [sa, sb] = await Promise.all([h.waitForResolution(a), h.waitForResolution(b)]);
  assert.equal(sa.state, 'completed');
  assert.equal(sb.state, 'completed');
  assert.equal(storageHits.get('/gated.tar'), 1, 'one download');
  const started = h.capture.events.filter((e) => e.message === 'image download started' && e.path === 'public/gated.tar');
  assert.equal(started.length, 1);
  const loaded = h.capture.events.filter((e) => e.message === 'image loaded' && e.path === 'public/gated.tar');
  assert.equal(loaded.length, 1, 'one load');
  const other = joiner.taskId === a ? b : a;
  assert.equal(started[0]!.taskId, other, 'the other task started it');
  const [shared] = h.events('image reused', joiner.taskId as string);
  assert.equal(shared?.shared, true);
  assert.equal(shared?.imageId, loaded[0]!.imageId);
  assert.match(await h.taskLog(joiner.taskId as string), /Waiting for image artifact public\/gated\.tar of task \S+, which another task is downloading/);
});

test('a tarball without a manifest fails the task with one sentence and loads nothing', async () => {
  const taskId = await run({ type: 'task-image', taskId: producer, path: 'public/no-manifest.tar' });
  assert.equal((await h.waitForResolution(taskId)).state, 'failed');
  const log = await h.taskLog(taskId);
  assert.match(log, /^Error: The image artifact public\/no-manifest\.tar of task \S+ cannot be loaded: the artifact is a tar archive without an image manifest \(neither manifest\.json nor repositories\); make it with docker save\.\r?$/m);
  assert.deepEqual(await tagsOf('public/no-manifest.tar'), []);
  assert.equal(h.events('image loaded', taskId).length, 0);
  assert.doesNotMatch(log, /=== Task Starting ===/);
});

test('an indexed-image found through an Index route of a completed producer task', async () => {
  const namespace = `project.test.routed.${taskcluster.slugid().toLowerCase().replace(/[^a-z0-9]/g, '')}`;
  const routed = await publishProducerTask(h.rootUrl, h.credentials, [{ name: 'public/build/image.tar.zst', file: files.zst }], { routes: [`index.${namespace}`] });
  routedProducers.push(routed);
  const taskId = await run({ type: 'indexed-image', namespace, path: 'public/build/image.tar.zst' });
  const status = await h.waitForResolution(taskId);
  const log = await h.taskLog(taskId);
  assert.equal(status.state, 'completed', log);
  assert.match(log, /^ran from artifact\r?$/m);
  assert.match(log, new RegExp(`public/build/image\\.tar\\.zst of task ${routed} \\(indexed at ${namespace.replace(/\./g, '\\.')}\\)`));
  // (Its bytes are those of public/image.tar.zst, loaded above: reused by content, not downloaded.)
  const [used] = [...h.events('image loaded', taskId), ...h.events('image reused', taskId)];
  assert.equal(used?.sourceTaskId, routed, 'the image came from the task the route indexed');
});

test('a 401 from artifact storage fails the task at once', async () => {
  const taskId = await run({ type: 'task-image', taskId: producer, path: 'public/denied.tar' });
  assert.equal((await h.waitForResolution(taskId)).state, 'failed');
  const log = await h.taskLog(taskId);
  assert.match(log, /^Error: Not authorized to download the image artifact public\/denied\.tar of task \S+ \(HTTP 401: AccessDenied\)\.\r?$/m);
  assert.equal(storageHits.get('/denied.tar'), 1, 'not retried');
  assert.doesNotMatch(log, /Retrying in/);
});

test('an artifact download that keeps failing is retried with backoff, then gives up', async () => {
  const taskId = await run({ type: 'task-image', taskId: producer, path: 'public/busy.tar' });
  assert.equal((await h.waitForResolution(taskId)).state, 'failed');
  const log = await h.taskLog(taskId);
  assert.match(log, /^Error: Could not download the image artifact public\/busy\.tar of task \S+ \(HTTP 503: SlowDown\)\. Gave up after 6 attempts\.\r?$/m);
  assert.equal(log.match(/Retrying in \d+\.\d s/g)?.length, 5, log);
  assert.equal(storageHits.get('/busy.tar'), 6);
});

test('a slow artifact download shows progress lines in the task log', async () => {
  const taskId = await run({ type: 'task-image', taskId: producer, path: 'public/slow.tar' });
  const status = await h.waitForResolution(taskId);
  const log = await h.taskLog(taskId);
  assert.equal(status.state, 'completed', log);
  const size = readFileSync(files.tar).length;
  assert.ok(size > 1024 * 1024, 'the tarball is over 1 MiB');
  const line = (text: string) => new RegExp(`^\\[taskcluster [^\\]]+\\] ${text}\\r?$`, 'm');
  assert.match(log, line('Downloading image artifact public/slow\\.tar of task \\S+ \\(\\d+\\.\\d MiB\\)'));
  assert.match(log, line('Downloading public/slow\\.tar: \\d+\\.\\d (KiB|MiB) of \\d+\\.\\d MiB \\(\\d+%\\), \\d+\\.\\d (KiB|MiB)/s'), 'a progress line with bytes, total, percentage and rate');
  assert.match(log, line('Downloaded \\d+\\.\\d MiB in \\d+\\.\\d s \\(.*/s\\), tar data, sha256:[0-9a-f]{64}; loading it into Docker'));
});

test('a private image artifact may be granted through a role', async () => {
  const auth = new taskcluster.Auth({ rootUrl: h.rootUrl, credentials: h.credentials });
  await auth.createRole('project:image-readers', { description: 'reads private images', scopes: ['queue:get-artifact:private/role/*'] });
  const taskId = await run({ type: 'task-image', taskId: producer, path: 'private/role/image.tar.gz' }, { scopes: ['assume:project:image-readers'] });
  const status = await h.waitForResolution(taskId);
  const log = await h.taskLog(taskId);
  assert.equal(status.state, 'completed', log);
  assert.match(log, /^ran from artifact\r?$/m);
});
