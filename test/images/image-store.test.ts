// The ImageStore on its own, against the embedded deployment and the real engine: shared
// downloads and pulls, leases, the memory of loaded images across a restart (checked against
// the engine), and how storage trouble is met: 5xx and broken connections are retried, a 404
// fails at once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import winston from 'winston';
import Transport from 'winston-transport';
import { startEmbedded, type EmbeddedDeployment } from '../../lib/embedded/server.ts';
import { ImageStore, type EnsureContext } from '../../lib/images/image-store.ts';
import { ImageFailure } from '../../lib/images/errors.ts';
import { silentLog } from '../../lib/log/worker-log.ts';
import { testEngine } from '../support/docker.ts';
import { OPEN_TASKENV_PASS } from '../support/registry.ts';
import { buildImageFiles, publishProducerTask, sha256File, type ImageFiles } from './image-fixtures.ts';

interface Event { message: string; [k: string]: unknown }
class Capture extends Transport {
  readonly events: Event[] = [];
  override log(info: Event, next: () => void): void { this.events.push(info); next(); }
}

const engine = testEngine();
let embedded: EmbeddedDeployment;
let files: ImageFiles;
let stateDir: string;
let producer: string;
let storage: Server;
let storageUrl: string;
/** What the flaky storage server does with each request, in order; then it serves the tarball. */
const plan: Array<'503' | '404' | 'cut' | 'stall'> = [];
/** Resolved when a stalled download's connection was closed by the worker. */
let stalledClosed: Promise<void> | undefined;
let storageHits = 0;

before(async () => {
  files = await buildImageFiles();
  stateDir = mkdtempSync(path.join(os.tmpdir(), 'image-store-'));
  embedded = await startEmbedded({ stateDir: path.join(stateDir, 'embedded'), port: 0, log: silentLog });
  const tar = readFileSync(files.tar);
  storage = createServer((req, res) => {
    storageHits++;
    const next = plan.shift();
    if (next === '503') { res.writeHead(503).end('storage is busy'); return; }
    if (next === '404') { res.writeHead(404).end('NoSuchKey'); return; }
    res.writeHead(200, { 'content-length': tar.length, 'content-type': 'application/x-tar' });
    if (next === 'cut') { res.write(tar.subarray(0, tar.length / 2), () => res.socket?.destroy()); return; }
    if (next === 'stall') {
      stalledClosed = new Promise((r) => res.on('close', () => r()));
      res.write(tar.subarray(0, tar.length / 2));
      return;
    }
    res.end(tar);
  });
  await new Promise<void>((r) => storage.listen(0, '127.0.0.1', r));
  storageUrl = `http://127.0.0.1:${(storage.address() as { port: number }).port}`;
  producer = await publishProducerTask(embedded.rootUrl, embedded.credentials, [
    { name: 'public/shared.tar.zst', file: files.zst },
    { name: 'public/restart.tar.gz', file: files.gz },
    { name: 'public/flaky-503.tar', reference: `${storageUrl}/flaky-503.tar` },
    { name: 'public/flaky-cut.tar', reference: `${storageUrl}/flaky-cut.tar` },
    { name: 'public/gone.tar', reference: `${storageUrl}/gone.tar` },
    { name: 'public/stall.tar', reference: `${storageUrl}/stall.tar` },
  ]);
});

after(async () => {
  storage?.close();
  await embedded?.close();
  for (const image of await engine.listImages()) {
    for (const tag of image.repoTags.filter((t) => t.startsWith(`task-image/${producer.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '')}/`))) {
      await engine.removeImage(tag);
    }
  }
  files?.remove();
  rmSync(stateDir, { recursive: true, force: true });
});

function store(capture = new Capture()): { images: ImageStore; capture: Capture } {
  const log = winston.createLogger({ level: 'debug', transports: [capture] });
  const images = new ImageStore({
    engine, log, stateDir, rootUrl: embedded.rootUrl, registries: {}, pullRetries: 0, pullBaseDelayMs: 10, downloadRetries: 2, downloadBaseDelayMs: 10,
  });
  return { images, capture };
}

function context(taskId: string, lines: string[] = [], signal = new AbortController().signal): EnsureContext {
  return {
    taskId, scopes: [], credentials: () => embedded.credentials, signal,
    taskLog: { info: (l) => lines.push(l), warn: (l) => lines.push(`warning: ${l}`) },
  };
}

const events = (c: Capture, message: string) => c.events.filter((e) => e.message === message);

test('concurrent tasks share one download; leases tell the collector what is in use', async () => {
  const { images, capture } = store();
  const ref = { kind: 'task-image' as const, taskId: producer, path: 'public/shared.tar.zst' };
  const lines: Record<string, string[]> = { 'task-a': [], 'task-b': [] };
  const [a, b] = await Promise.all([images.ensure(ref, context('task-a', lines['task-a'])), images.ensure(ref, context('task-b', lines['task-b']))]);
  assert.equal(events(capture, 'image download started').length, 1);
  assert.equal(a.imageId, b.imageId);
  assert.equal(a.artifactHash, sha256File(files.zst));
  assert.equal(b.artifactHash, a.artifactHash);
  const reused = events(capture, 'image reused');
  assert.equal(reused.length, 1);
  assert.equal(reused[0]!.shared, true);
  const joiner = lines[reused[0]!.taskId as string]!;
  assert.ok(joiner.some((l) => /which another task is downloading/.test(l)), joiner.join('\n'));
  assert.equal(images.inUse(a.imageId), true);
  a.release();
  a.release();
  assert.equal(images.inUse(a.imageId), true, 'task B still holds it');
  b.release();
  assert.equal(images.inUse(a.imageId), false);
  assert.ok((images.lastUsed(a.imageId) ?? 0) > Date.now() - 60_000);
});

test('the memory of loaded images survives a restart and is checked against the engine', async () => {
  const ref = { kind: 'task-image' as const, taskId: producer, path: 'public/restart.tar.gz' };
  const first = store();
  const loaded = await first.images.ensure(ref, context('t1'));
  assert.equal(events(first.capture, 'image loaded').length, 1);

  const second = store(); // a new worker process on the same state directory
  const again = await second.images.ensure(ref, context('t2'));
  assert.equal(events(second.capture, 'image download started').length, 0);
  assert.equal(events(second.capture, 'image reused')[0]?.digest, sha256File(files.gz));
  assert.equal(again.imageId, loaded.imageId);
  assert.ok(second.images.loadedArtifacts().some((r) => r.path === 'public/restart.tar.gz'));

  const [name] = (await engine.listImages()).flatMap((i) => i.repoTags).filter((t) => t === again.name);
  assert.ok(name, 'the image is there under its name');
  await engine.removeImage(name);
  const third = store();
  await third.images.ensure(ref, context('t3'));
  assert.equal(events(third.capture, 'image download started').length, 1, 'an image gone from the engine is downloaded again');
});

test('a 5xx from storage is retried with backoff', async () => {
  const { images, capture } = store();
  plan.push('503');
  const lines: string[] = [];
  const ready = await images.ensure({ kind: 'task-image', taskId: producer, path: 'public/flaky-503.tar' }, context('t', lines));
  assert.equal(ready.artifactHash, sha256File(files.tar));
  assert.ok(lines.some((l) => /HTTP 503.*Retrying in/.test(l)), lines.join('\n'));
  assert.equal(events(capture, 'image load failed')[0]?.kind, 'transient');
});

test('a connection that breaks mid-download is retried', async () => {
  const { images, capture } = store();
  plan.push('cut');
  const lines: string[] = [];
  await images.ensure({ kind: 'task-image', taskId: producer, path: 'public/flaky-cut.tar' }, context('t', lines));
  assert.ok(lines.some((l) => /broke off.*Retrying in/.test(l)), lines.join('\n'));
  assert.equal(events(capture, 'image loaded').length, 1);
});

test('a 404 from storage fails at once with a plain message', async () => {
  const { images } = store();
  plan.push('404', '404', '404');
  const hits = storageHits;
  await assert.rejects(images.ensure({ kind: 'task-image', taskId: producer, path: 'public/gone.tar' }, context('t')), (err: Error) => {
    assert.ok(err instanceof ImageFailure);
    assert.equal(err.kind, 'not-found');
    assert.match(err.message, /^The data of the image artifact public\/gone\.tar of task \S+ was not found in storage \(HTTP 404: NoSuchKey\)\.$/);
    return true;
  });
  assert.equal(storageHits - hits, 1, 'not retried');
  plan.length = 0;
});

test('a task cancelled during the download stops it and loads nothing', async () => {
  const { images, capture } = store();
  plan.push('stall');
  const cancel = new AbortController();
  const lines: string[] = [];
  const ensuring = images.ensure({ kind: 'task-image', taskId: producer, path: 'public/stall.tar' }, context('t', lines, cancel.signal));
  while (!lines.some((l) => l.startsWith('Downloading image artifact'))) await new Promise((r) => setTimeout(r, 10));
  cancel.abort(new Error('task cancelled'));
  await assert.rejects(ensuring, /task cancelled/);
  await stalledClosed;
  assert.equal(events(capture, 'image loaded').length, 0);
  const repository = `task-image/${producer.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '')}/`;
  const stallTags = (await engine.listImages()).flatMap((i) => i.repoTags).filter((t) => t.startsWith(repository) && !images.loadedArtifacts().some((r) => r.name === t));
  assert.deepEqual(stallTags, []);
});

test('a private artifact without its scope is refused before any request', async () => {
  const { images, capture } = store();
  await assert.rejects(images.ensure({ kind: 'task-image', taskId: producer, path: 'private/x.tar' }, context('t')),
    /^ImageFailure: Not authorized to use the image artifact private\/x\.tar of task \S+: artifacts outside public\/ need the scope queue:get-artifact:private\/x\.tar in task\.scopes; add it to the task\.$/);
  assert.equal(events(capture, 'image download started').length, 0);
});

test('concurrent pulls of one registry image share one pull', async () => {
  const { images } = store();
  const lines: string[][] = [[], []];
  const ref = { kind: 'registry' as const, name: OPEN_TASKENV_PASS };
  const [a, b] = await Promise.all([images.ensure(ref, context('a', lines[0])), images.ensure(ref, context('b', lines[1]))]);
  assert.equal(a.imageId, b.imageId);
  assert.ok(lines[1]!.some((l) => /which another task is pulling/.test(l)), lines[1]!.join('\n'));
  for (const l of lines) assert.equal(l.filter((x) => /^Pulling image /.test(x)).length, 1, 'each task sees the pull\'s lines once');
  a.release();
  b.release();
});
